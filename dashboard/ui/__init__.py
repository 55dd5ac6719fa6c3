"""The Streamlit pages: thin scripts; their data and charts live in :mod:`dashboard.views`.

=============  ===========================================================================
module         concern
=============  ===========================================================================
``main``       the page router (``st.navigation``), the login form, the sidebar
``common``     small pieces shared by the pages
``guard``      the Gateway page's trading guard: halts with Resume, the halt form, what it watches
``screens/*``  one script per page: overview, timeline, trading, deploys, balances, nonce,
               gateway, settings
=============  ===========================================================================
"""
