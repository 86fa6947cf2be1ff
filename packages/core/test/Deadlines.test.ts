/**
 * The watchdogs' shared sleeper: deadlines run in time order on the handles' clock, a cancelled one never runs, an
 * earlier deadline added while it sleeps wakes it, and it stops once none is pending (nothing left to keep a
 * process alive). Under TestClock, as the watchdogs are.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import { deadlinesOf } from "../src/internal/deadlines.ts"

describe("Deadlines", () => {
  it.effect("runs deadlines in order at their time, skips cancelled ones, and stops when none is left", () =>
    Effect.gen(function* () {
      const clock = yield* Clock.Clock
      const deadlines = deadlinesOf(clock, yield* Effect.context<never>())
      const start = clock.currentTimeMillisUnsafe()
      const ran: Array<[string, number]> = []
      const at = (name: string) => () => ran.push([name, clock.currentTimeMillisUnsafe() - start])
      deadlines.add(start + 300, at("c"))
      deadlines.add(start + 100, at("a"))
      const cancelled = deadlines.add(start + 200, at("never"))
      yield* TestClock.adjust("50 millis")
      // Earlier than what the sleeper waits for: it wakes for it.
      deadlines.add(start + 60, at("early"))
      deadlines.cancel(cancelled)
      yield* TestClock.adjust("49 millis")
      assert.deepStrictEqual(ran, [["early", 60]])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(ran, [
        ["early", 60],
        ["a", 100]
      ])
      assert.isTrue(deadlines.sleeping)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(ran, [
        ["early", 60],
        ["a", 100],
        ["c", 300]
      ])
      assert.isFalse(deadlines.sleeping)
    })
  )

  it.effect("a deadline may add the next one from its callback; cancelling the last stops the sleeper", () =>
    Effect.gen(function* () {
      const clock = yield* Clock.Clock
      const deadlines = deadlinesOf(clock, yield* Effect.context<never>())
      const start = clock.currentTimeMillisUnsafe()
      const ticks: Array<number> = []
      let current = deadlines.add(start + 10, function tick() {
        ticks.push(clock.currentTimeMillisUnsafe() - start)
        current = deadlines.add(clock.currentTimeMillisUnsafe() + 10, tick)
      })
      yield* TestClock.adjust("35 millis")
      assert.deepStrictEqual(ticks, [10, 20, 30])
      deadlines.cancel(current)
      yield* Effect.yieldNow
      assert.isFalse(deadlines.sleeping)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(ticks, [10, 20, 30])
    })
  )

  it.effect("a deadline that throws does not stop the others", () =>
    Effect.gen(function* () {
      const clock = yield* Clock.Clock
      const deadlines = deadlinesOf(clock, yield* Effect.context<never>())
      const start = clock.currentTimeMillisUnsafe()
      const ran: Array<string> = []
      deadlines.add(start + 10, () => {
        throw new Error("a bug in a watchdog")
      })
      deadlines.add(start + 10, () => ran.push("same time"))
      deadlines.add(start + 20, () => ran.push("later"))
      yield* TestClock.adjust("30 millis")
      assert.deepStrictEqual(ran, ["same time", "later"])
      assert.isFalse(deadlines.sleeping)
    })
  )

  it.effect("a cancelled deadline lets go of its callback at once, though it stays in the heap until its time", () =>
    Effect.gen(function* () {
      const clock = yield* Clock.Clock
      const deadlines = deadlinesOf(clock, yield* Effect.context<never>())
      const start = clock.currentTimeMillisUnsafe()
      // What a connection's timeout callback holds: here a large array, there the connection's closures.
      const held = new Array(10_000).fill(0)
      const callback = () => void held.length
      const cancelled = deadlines.add(start + 1000, callback)
      // A later deadline keeps the sleeper waiting, so the cancelled one stays in the heap for a while.
      deadlines.add(start + 2000, () => {})
      deadlines.cancel(cancelled)
      assert.notStrictEqual(cancelled.run, callback)
      cancelled.run()
      yield* TestClock.adjust("3 seconds")
      assert.isFalse(deadlines.sleeping)
    })
  )
})
