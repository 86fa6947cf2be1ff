import { Effect, Stream } from "effect"
import { describe, expect, it } from "vitest"
import {
  atRate,
  bootstrapInterval,
  countTo,
  latencyRounds,
  latencyRows,
  now,
  pairedRatio,
  type Row,
  verdict
} from "../src/harness.ts"

const row = (ratio: number, interval: readonly [number, number]): Row => ({
  suite: "s",
  case: "c",
  metric: "throughput",
  unit: "msg/s",
  subject: 1,
  baseline: 1,
  ratio,
  interval,
  target: 0.85
})

describe("pairedRatio", () => {
  it("is the geometric mean of the middle rounds: outliers on either side do not move it", () => {
    const middle = [0.8, 0.9, 1.0, 0.9, 0.8, 1.0]
    const geometric = Math.exp(middle.reduce((sum, x) => sum + Math.log(x), 0) / middle.length)
    // Ten rounds: the two lowest and the two highest are left out, however far off they are.
    expect(pairedRatio([...middle, 0.01, 0.02, 50, 100])).toBeCloseTo(geometric, 12)
  })

  it("treats a round twice as fast and one twice as slow symmetrically", () => {
    expect(pairedRatio([0.5, 1, 2])).toBeCloseTo(1, 12)
  })
})

describe("bootstrapInterval", () => {
  const noisy = Array.from({ length: 41 }, (_, i) => 0.88 + 0.2 * Math.sin(i * 2.3))

  it("brackets the estimate and is reproducible", () => {
    const [low, high] = bootstrapInterval(noisy, pairedRatio)
    const estimate = pairedRatio(noisy)
    expect(low).toBeLessThan(estimate)
    expect(high).toBeGreaterThan(estimate)
    expect(bootstrapInterval(noisy, pairedRatio)).toEqual([low, high])
  })

  it("narrows as rounds are added", () => {
    const width = (xs: ReadonlyArray<number>) => {
      const [low, high] = bootstrapInterval(xs, pairedRatio)
      return high - low
    }
    const more = Array.from({ length: 401 }, (_, i) => 0.88 + 0.2 * Math.sin(i * 2.3))
    expect(width(more)).toBeLessThan(width(noisy) / 2)
  })

  it("is a point for rounds that all agree", () => {
    expect(bootstrapInterval([0.9, 0.9, 0.9, 0.9, 0.9], pairedRatio)).toEqual(
      [0.9, 0.9].map((x) => expect.closeTo(x, 12))
    )
  })
})

describe("verdict", () => {
  it("says ok only when the whole interval clears the target, BELOW only when it all misses", () => {
    expect(verdict(row(0.9, [0.86, 0.94]))).toBe("ok")
    expect(verdict(row(0.8, [0.76, 0.84]))).toBe("BELOW")
    expect(verdict(row(0.86, [0.82, 0.9]))).toBe("unclear")
    expect(verdict(row(0.84, [0.82, 0.9]))).toBe("unclear")
  })

  it("is empty for rows without a target", () => {
    expect(verdict({ ...row(1, [1, 1]), target: undefined })).toBe("")
  })
})

describe("countTo", () => {
  it("stops an endless stream once the count is reached, at the batch that reached it", async () => {
    let pulled = 0
    const endless = Stream.fromPull(Effect.succeed(Effect.sync(() => [++pulled, ++pulled, ++pulled] as const)))
    const before = performance.now()
    const at = await Effect.runPromise(countTo(endless, 10))
    expect(at).toBeGreaterThanOrEqual(before)
    // Batches of three: the fourth batch (items 10–12) reached ten. A source that never waits keeps the consuming
    // fiber running until the scheduler makes it yield; then it is interrupted (this test ending proves it).
    expect(pulled).toBeGreaterThanOrEqual(12)
  })

  it("dies when the stream ends short of the count", async () => {
    const exit = await Effect.runPromiseExit(countTo(Stream.make(1, 2, 3), 10))
    expect(exit._tag).toBe("Failure")
    expect(String(exit)).toContain("stream ended after 3 of 10 items")
  })

  it("succeeds when the stream ends exactly at the count", async () => {
    const at = await Effect.runPromise(countTo(Stream.make(1, 2, 3), 3))
    expect(at).toBeGreaterThan(0)
  })
})

describe("latency", () => {
  it("atRate sends exactly the count, each message reading the clock as it leaves", async () => {
    const stamps: Array<number> = []
    await atRate(50, 10_000, () => stamps.push(now()))
    expect(stamps).toHaveLength(50)
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps)
  })

  it("latencyRounds takes each client's median over rounds, and latencyRows compares it with raw", async () => {
    // Each client's messages arrive 60, 5, then 20 ms (plus `extra`) after they were sent, one round each: the
    // medians are the 20 ms round's.
    const delays = [60, 5, 20]
    const client = (extra: number) => {
      let round = 0
      return async (record: (sentAt: number) => void) => {
        const delay = delays[round++]! + extra
        return async () => {
          for (let i = 0; i < 10; i++) record(now() - delay)
        }
      }
    }
    const results = await latencyRounds(
      [
        ["raw", client(0)],
        ["ours", client(1)]
      ],
      async () => {},
      3
    )
    expect(results.get("raw")!.p50).toBeGreaterThanOrEqual(20)
    expect(results.get("raw")!.p50).toBeLessThan(25)
    expect(results.get("ours")!.p99 - results.get("raw")!.p99).toBeCloseTo(1, 0)
    const rows = latencyRows("s", "at a rate", results, { raw: "raw", ours: "ours" }, "< 1 ms")
    expect(rows.map((r) => r.case.split(" (")[0])).toEqual(["latency p50 at a rate", "latency p99 at a rate"])
    expect(rows[1]!.case).toContain("target < 1 ms")
  })
})
