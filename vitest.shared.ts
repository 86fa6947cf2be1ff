// The vitest settings every package shares. The JSON report feeds the suite-wide summary line that
// `pnpm test` prints at the end (scripts/test-summary.mjs).
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    reporters: ["default", ["json", { outputFile: ".vitest/results.json" }]],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
