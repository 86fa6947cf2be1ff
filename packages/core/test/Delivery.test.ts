import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { Delivery } from "../src/index.ts"

/** In-memory deliveries that record what became of them. */
const deliveries = (count: number) => {
  const outcome = new Map<string, "acked" | "released">()
  const items = Array.from(
    { length: count },
    (_, i): Delivery.Delivery<number> => ({
      id: `${i + 1}`,
      item: i + 1,
      deliveries: 1,
      ack: Effect.sync(() => void outcome.set(`${i + 1}`, "acked")),
      release: Effect.sync(() => void outcome.set(`${i + 1}`, "released"))
    })
  )
  return { outcome, stream: Stream.fromIterable(items) }
}

describe("Delivery.process", () => {
  it.effect("acknowledges after the work succeeded, releases after it failed, and goes on", () =>
    Effect.gen(function* () {
      const { outcome, stream } = deliveries(6)
      const worked: Array<number> = []
      yield* Delivery.process(stream, (n) =>
        n % 3 === 0 ? Effect.fail(`refused ${n}`) : Effect.sync(() => worked.push(n))
      )
      assert.deepStrictEqual(worked, [1, 2, 4, 5])
      assert.deepStrictEqual(Object.fromEntries(outcome), {
        "1": "acked",
        "2": "acked",
        "3": "released",
        "4": "acked",
        "5": "acked",
        "6": "released"
      })
    })
  )

  it.live("runs at most `concurrency` works at once", () =>
    Effect.gen(function* () {
      const { outcome, stream } = deliveries(20)
      let running = 0
      let most = 0
      yield* Delivery.process(
        stream,
        () =>
          Effect.gen(function* () {
            most = Math.max(most, ++running)
            yield* Effect.sleep("2 millis")
            running--
          }),
        { concurrency: 4 }
      )
      assert.strictEqual(most, 4)
      assert.strictEqual([...outcome.values()].filter((o) => o === "acked").length, 20)
    })
  )

  it.effect("a defect in the work releases the delivery too", () =>
    Effect.gen(function* () {
      const { outcome, stream } = deliveries(2)
      yield* Delivery.process(stream, (n) => (n === 1 ? Effect.die("bug") : Effect.void))
      assert.deepStrictEqual(Object.fromEntries(outcome), { "1": "released", "2": "acked" })
    })
  )

  it.effect("an invalid concurrency fails at once with a Config error naming it", () =>
    Effect.gen(function* () {
      const { outcome, stream } = deliveries(1)
      for (const concurrency of [0, 1.5, -2]) {
        const error = yield* Effect.flip(Delivery.process(stream, () => Effect.void, { concurrency }))
        assert.strictEqual(error.reason._tag, "Config")
        assert.include(error.message, "concurrency")
      }
      assert.strictEqual(outcome.size, 0)
    })
  )
})
