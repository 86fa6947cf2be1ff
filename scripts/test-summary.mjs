// One closing line for the whole suite, from each package's vitest JSON report.
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join, resolve } from "node:path"

const root = resolve(import.meta.dirname, "..")
let passed = 0
let failed = 0
let skipped = 0
const lines = []
// Every workspace package with tests: packages/*, apps/* and the benchmark's own (its estimator).
const dirs = ["packages", "apps"].flatMap((group) =>
  existsSync(join(root, group)) ? readdirSync(join(root, group)).map((dir) => join(group, dir)) : []
)
for (const dir of [...dirs, "bench"]) {
  const report = join(root, dir, ".vitest", "results.json")
  if (!existsSync(report)) continue
  const r = JSON.parse(readFileSync(report, "utf8"))
  passed += r.numPassedTests
  failed += r.numFailedTests
  skipped += r.numPendingTests + r.numTodoTests
  lines.push(`  ${dir}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)
}
console.log(lines.join("\n"))
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
if (failed > 0 || passed === 0) process.exit(1)
