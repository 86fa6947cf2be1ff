// One closing line for the whole suite, from each package's vitest JSON report.
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join, resolve } from "node:path"

const root = resolve(import.meta.dirname, "..")
let passed = 0
let failed = 0
let skipped = 0
const lines = []
for (const group of ["packages", "apps"]) {
  if (!existsSync(join(root, group))) continue
  for (const dir of readdirSync(join(root, group))) {
    const report = join(root, group, dir, ".vitest", "results.json")
    if (!existsSync(report)) continue
    const r = JSON.parse(readFileSync(report, "utf8"))
    passed += r.numPassedTests
    failed += r.numFailedTests
    skipped += r.numPendingTests + r.numTodoTests
    lines.push(`  ${group}/${dir}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)
  }
}
console.log(lines.join("\n"))
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
if (failed > 0 || passed === 0) process.exit(1)
