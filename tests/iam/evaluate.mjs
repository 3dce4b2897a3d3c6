// Evaluates a batch of IAM authorization requests with @cloud-copilot/iam-simulate, in one
// process: reads a JSON array of simulations on standard input (each as iam-simulate's
// `runSimulation` takes it), writes a JSON array of results in the same order on standard
// output: `{"result": "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied"}`, or
// `{"error": "..."}` when the simulator refused the input (a malformed policy, an unknown
// action): the caller treats that as a failure, never as a denial.
//
// A test tool only: iam-simulate is AGPL-3.0-or-later and is never shipped with the broker.
import { runSimulation } from '@cloud-copilot/iam-simulate';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const batch = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const results = [];
for (const simulation of batch) {
  try {
    const out = await runSimulation(
      {
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        ...simulation,
      },
      { simulationMode: 'Strict' },
    );
    if (out.resultType === 'error') {
      results.push({ error: JSON.stringify(out.errors) });
    } else if (out.resultType === 'single') {
      const ignored = out.result?.ignoredContextKeys ?? [];
      results.push({ result: out.overallResult, ignored });
    } else if (out.resultType === 'wildcard' && out.results.length === 1) {
      // An action that takes no resource (ec2:DescribeInstances): one simulation on `*`.
      results.push({ result: out.overallResult, ignored: out.results[0].ignoredContextKeys ?? [] });
    } else {
      results.push({ error: `the wildcard resource gave ${out.results?.length} simulations` });
    }
  } catch (e) {
    results.push({ error: String(e?.stack ?? e) });
  }
}
process.stdout.write(JSON.stringify(results));
