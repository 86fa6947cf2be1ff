/**
 * Every example runs against its embedded sources and does what its README line says.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Coordination from "../src/coordination.ts"
import * as EventProcessing from "../src/event-processing.ts"
import * as FilePipeline from "../src/file-pipeline.ts"
import * as HealthMonitoring from "../src/health-monitoring.ts"
import * as HttpStreaming from "../src/http-streaming.ts"
import * as Metrics from "../src/metrics.ts"
import * as RateLimiting from "../src/rate-limiting.ts"

describe("the guide's examples, on the connectors", () => {
  it.live("event processing: totals per status, the bad event skipped and counted", () =>
    Effect.gen(function* () {
      const result = yield* EventProcessing.program
      assert.deepStrictEqual(result, { paid: 16, refunded: 4, amount: 250, skipped: 1 })
    }).pipe(Effect.scoped)
  )

  it.live("metrics: windows of 20 ticks with their mean and max, the last price as a gauge", () =>
    Effect.gen(function* () {
      const result = yield* Metrics.program
      assert.deepStrictEqual(
        result.windows.map((w) => w.count),
        [20, 20, 20]
      )
      for (const w of result.windows) assert.isTrue(w.mean > 96 && w.mean < 104 && w.max >= w.mean)
      assert.isTrue(result.lastPrice > 96 && result.lastPrice < 104)
    }).pipe(Effect.scoped)
  )

  it.live("file pipeline: new files counted, the ignored one never seen, a removal noted, no initial scan", () =>
    Effect.gen(function* () {
      const result = yield* FilePipeline.program
      assert.deepStrictEqual(result.report, ["a.txt: 3 words", "b.txt: 2 words", "existing.txt: unlink"])
    }).pipe(Effect.scoped)
  )

  it.live("HTTP streaming: a dropped export resumed after the last row, every row once", () =>
    Effect.gen(function* () {
      const result = yield* HttpStreaming.program
      assert.deepStrictEqual(result, { rows: 30, first: 1, last: 30, requests: 2 })
    }).pipe(Effect.scoped)
  )

  it.live("rate limiting: 40 messages at 20 a second, and every other message accounted for", () =>
    Effect.gen(function* () {
      const result = yield* RateLimiting.program
      assert.strictEqual(result.taken, 40)
      assert.isAtLeast(result.seconds, 0.9)
      assert.strictEqual(result.delivered + result.buffered + result.dropped, 5000, "nothing lost without a count")
    }).pipe(Effect.scoped)
  )

  it.live("health monitoring: up, down, up again, back after a counted downtime", () =>
    Effect.gen(function* () {
      const result = yield* HealthMonitoring.program
      assert.deepStrictEqual(result.health.slice(0, 3), ["up (attempt 1)", "down: Closed", "up (attempt 2)"])
      assert.match(result.health[3]!, /^back after \d+ ms \(possible-loss\)$/)
      assert.strictEqual(result.reconnects, 1)
    }).pipe(Effect.scoped)
  )

  it.live("coordination: every order priced at the latest price", () =>
    Effect.gen(function* () {
      const result = yield* Coordination.program
      assert.deepStrictEqual(
        result.decisions,
        [1, 2, 3, 4, 5].map((order) => ({ order, priced: true }))
      )
    }).pipe(Effect.scoped)
  )
})
