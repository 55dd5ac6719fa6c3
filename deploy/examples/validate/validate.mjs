// Checks the deploy examples against the schemas their controllers publish:
//   Kubernetes objects of Argo Rollouts (argoproj.io/v1alpha1) with @kubernetes-models/argo-rollouts
//   (JSON schemas generated from Argo Rollouts' Go API types: types, required fields, enums);
//   GitHub Actions workflows with @actions/workflow-parser (GitHub's own workflow schema).
//
// Usage: node validate.mjs FILE...   (after `npm ci` in this folder)
// Prints one line per file ("ok FILE: ..." or the problems found) and exits 0 when every file is
// valid, 1 when one is not, 2 for a usage error.
import { readFileSync } from "node:fs";
import { register } from "node:module";
import { parseAllDocuments } from "yaml";

// @actions/workflow-parser imports its JSON schema without an import attribute (it is made for
// bundlers); Node.js refuses that, so JSON modules are loaded here as JavaScript.
const jsonAsModule = `
import { readFile } from "node:fs/promises";
export async function load(url, context, nextLoad) {
  if (url.endsWith(".json") && !context.importAttributes?.type) {
    const text = await readFile(new URL(url), "utf8");
    return { format: "module", source: "export default " + text + ";", shortCircuit: true };
  }
  return nextLoad(url, context);
}`;
register(`data:text/javascript,${encodeURIComponent(jsonAsModule)}`);

const SCHEMAS = {
  "argoproj.io/v1alpha1": () => import("@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1"),
};

async function checkKubernetes(docs) {
  const problems = [];
  const kinds = [];
  for (const [index, doc] of docs.entries()) {
    const where = `document ${index + 1} (${doc?.kind ?? "no kind"} ${doc?.metadata?.name ?? ""})`;
    const load = SCHEMAS[doc?.apiVersion];
    if (!load) {
      problems.push(`${where}: no schema known for apiVersion ${JSON.stringify(doc?.apiVersion)}`);
      continue;
    }
    const Model = (await load())[doc.kind];
    if (typeof Model !== "function") {
      problems.push(`${where}: ${doc.apiVersion} has no kind ${JSON.stringify(doc.kind)}`);
      continue;
    }
    try {
      new Model(doc).validate();
      kinds.push(doc.kind);
    } catch (error) {
      problems.push(`${where}: ${error.message}`);
    }
  }
  return { problems, summary: `${kinds.length} objects (${kinds.join(", ")})` };
}

async function checkWorkflow(file, content) {
  const parser = await import("@actions/workflow-parser");
  const trace = new parser.NoOperationTraceWriter();
  const parsed = parser.parseWorkflow({ name: file, content }, trace);
  const template = await parser.convertWorkflowTemplate(parsed.context, parsed.value);
  const messages = [
    ...parsed.context.errors.getErrors().map((e) => e.message),
    ...(template.errors ?? []).map((e) => e.Message),
  ];
  const jobs = (template.jobs ?? []).map((job) => job.id?.value ?? job.id);
  return { problems: [...new Set(messages)], summary: `workflow, jobs: ${jobs.join(", ")}` };
}

async function check(file) {
  const content = readFileSync(file, "utf8");
  const docs = parseAllDocuments(content);
  const syntax = docs.flatMap((d) => d.errors.map((e) => `YAML: ${e.message}`));
  if (syntax.length) return { problems: syntax, summary: "" };
  const values = docs.map((d) => d.toJS()).filter((v) => v !== null);
  if (values.length && values.every((v) => v.apiVersion && v.kind)) return checkKubernetes(values);
  if (values.length === 1 && values[0].jobs && "on" in values[0]) return checkWorkflow(file, content);
  return { problems: ["neither Kubernetes objects nor a GitHub Actions workflow"], summary: "" };
}

const files = process.argv.slice(2);
if (!files.length) {
  console.error("usage: node validate.mjs FILE...");
  process.exit(2);
}
let invalid = 0;
for (const file of files) {
  const { problems, summary } = await check(file);
  if (problems.length) {
    invalid += 1;
    for (const problem of problems) console.log(`invalid ${file}: ${problem}`);
  } else {
    console.log(`ok ${file}: ${summary}`);
  }
}
process.exit(invalid ? 1 : 0);
