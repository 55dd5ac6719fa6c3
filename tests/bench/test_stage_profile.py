"""Benchmark 15's stage splitting: a recorder's marks -> complete calls -> ns per stage."""

from __future__ import annotations

from bench.stage_profile import (
    CLIENT_MARKS,
    CLIENT_TOTAL,
    GATEWAY_MARKS,
    GATEWAY_TOTAL,
    STAGES,
    fell_back,
    in_windows,
    split_calls,
    stage_durations,
)

Marks = list[tuple[str, int]]


def one_call(start: int, sequence: tuple[str, ...] = GATEWAY_MARKS, step: int = 10) -> Marks:
    """A call's marks: the i-th mark at ``start + step * i * (i + 1) / 2`` (each stage longer)."""
    return [(name, start + step * i * (i + 1) // 2) for i, name in enumerate(sequence)]


def test_complete_calls_are_kept_and_every_other_group_is_dropped() -> None:
    good = one_call(1_000)
    missing = [m for m in one_call(10_000) if m[0] != "signed"]
    # the lane's fallback after an attempt on the loop: picked, claimed, call twice; judged twice
    fallback = one_call(20_000)
    at = [name for name, _ in fallback].index("reserved")
    fallback[at:at] = [("picked", 20_500), ("claimed", 20_501), ("call", 20_502)]
    backwards = one_call(30_000)
    backwards[3] = (backwards[3][0], 29_000)  # a mark earlier than the one before it
    stray = [("call", 5), ("reserved", 6)]
    marks = [*stray, *good, *missing, *fallback, *backwards, *one_call(40_000)]

    complete, dropped = split_calls(marks, GATEWAY_MARKS)

    assert [call["arrived"] for call in complete] == [1_000, 40_000]
    assert len(dropped) == 4  # the stray marks before the first call, then three broken calls
    assert [group[0][1] for group in dropped] == [5, 10_000, 20_000, 30_000]


def test_stage_durations_follow_the_table() -> None:
    (call,), _ = split_calls(one_call(0), GATEWAY_MARKS)
    at = {name: 10 * i * (i + 1) // 2 for i, name in enumerate(GATEWAY_MARKS)}

    durations = stage_durations(call, (*STAGES, GATEWAY_TOTAL, CLIENT_TOTAL))

    assert durations["HTTP in: request parsed, routed"] == at["routed"] - at["arrived"]
    assert durations["upstream send and receive (simulator)"] == at["answered"] - at["signed"]
    assert durations["nonce store: reserve + release"] == (
        at["reserved"] - at["call"] + at["released"] - at["answered"]
    )
    assert durations[GATEWAY_TOTAL.label] == at["sent"] - at["arrived"]
    assert durations[CLIENT_TOTAL.label] == at["reported"] - at["call"]


def test_the_stages_of_each_side_add_up_to_its_total() -> None:
    for sequence, total in ((GATEWAY_MARKS, GATEWAY_TOTAL), (CLIENT_MARKS, CLIENT_TOTAL)):
        (call,), dropped = split_calls(one_call(7, sequence), sequence)
        assert not dropped
        durations = stage_durations(call)
        assert sum(durations.values()) == total.ns(call), sequence
    # KrakenClient alone has no gateway stage
    (alone,), _ = split_calls(one_call(0, CLIENT_MARKS), CLIENT_MARKS)
    assert set(stage_durations(alone)) == {
        "nonce store: reserve + release",
        "last check and signing",
        "upstream send and receive (simulator)",
        "`KrakenClient` report",
    }


def test_each_bot_window_is_matched_to_the_call_inside_it() -> None:
    calls, _ = split_calls(one_call(1_000) + one_call(10_000) + one_call(20_000), GATEWAY_MARKS)
    span = GATEWAY_TOTAL.ns(calls[0])
    windows = [
        (990, 1_000 + span + 5),  # holds the first call
        (9_000, 9_500),  # nothing inside: its call was dropped
        (19_999, 20_000 + span - 1),  # the call ends after the window: not this one's
    ]

    matched = in_windows(windows, calls, GATEWAY_TOTAL)

    assert [(ns, call["arrived"]) for ns, call in matched] == [(span + 15, 1_000)]


def test_a_call_that_fell_back_to_a_thread_counts_as_one_call_its_attempt_in_the_hand_over() -> (
    None
):
    names = list(GATEWAY_MARKS)
    queued = names.index("queued")
    # tried on the loop (picked, claimed, call), fell back: marked again in the thread, which
    # also marks judged before the loop does
    judged = names.index("judged")
    attempt = ["picked", "claimed", "call"]
    sequence = [*names[: queued + 1], *attempt, *names[queued + 1 : judged], *names[judged:]]
    sequence.insert(sequence.index("judged"), "judged")
    marks = one_call(1_000, tuple(sequence))
    at = dict(reversed(marks))  # the first time each name is marked
    last = dict(marks)  # the last

    complete, dropped = split_calls(marks, GATEWAY_MARKS)

    assert dropped == [] and len(complete) == 1
    call = complete[0]
    assert call["picked"] == last["picked"] != at["picked"]  # the thread's, after the attempt
    assert call["judged"] == last["judged"]  # the loop's
    hand_over = stage_durations(call)["lane: hand-over to the key's writer"]
    assert hand_over == last["picked"] - at["queued"]
    assert fell_back(marks) and not fell_back(one_call(1_000))
