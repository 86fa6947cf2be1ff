import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { ConnectorError, Delivery } from "../src/index.ts"

/** In-memory deliveries (through `Delivery.make`) that record every settlement the source was asked for. */
const deliveries = (count: number, options: { readonly failAcks?: number } = {}) => {
  const outcome = new Map<string, string>()
  const calls: Array<string> = []
  let failAcks = options.failAcks ?? 0
  const settler: Delivery.Settler<string> = {
    ack: async (id) => {
      calls.push(`ack ${id}`)
      if (failAcks-- > 0) throw new Error("connection reset")
      outcome.set(id, "acked")
    },
    release: (id) => {
      calls.push(`release ${id}`)
      outcome.set(id, "released")
    },
    nak: async (id, delay) => {
      calls.push(`nak ${id}`)
      outcome.set(id, `nak ${delay}`)
    },
    term: async (id, reason) => {
      calls.push(`term ${id}`)
      outcome.set(id, `term ${reason}`)
    },
    failure: (cause) => ConnectorError.make("test", new ConnectorError.Connect({ message: String(cause), cause }))
  }
  const items = Array.from({ length: count }, (_, i) =>
    Delivery.make(settler, `${i + 1}`, "test", `${i + 1}`, i + 1, 1)
  )
  return { outcome, calls, items, stream: Stream.fromIterable(items) }
}

describe("Delivery.make", () => {
  it.effect("the first settlement decides: an ack asked twice at once is sent once; after it, nothing else", () =>
    Effect.gen(function* () {
      const { calls, items } = deliveries(1)
      const [delivery] = items
      yield* Effect.all([delivery!.ack, delivery!.ack], { concurrency: "unbounded" })
      yield* delivery!.release
      yield* delivery!.nak("1 second")
      yield* delivery!.term("poison")
      assert.deepStrictEqual(calls, ["ack 1"])
    })
  )

  it.effect("an ack that failed may be asked for again, and a release after it frees the delivery", () =>
    Effect.gen(function* () {
      const { calls, items } = deliveries(2, { failAcks: 2 })
      const error = yield* Effect.flip(items[0]!.ack)
      assert.strictEqual(error.reason._tag, "Connect")
      yield* items[0]!.release
      yield* Effect.flip(items[1]!.ack)
      yield* items[1]!.ack
      assert.deepStrictEqual(calls, ["ack 1", "release 1", "ack 2", "ack 2"])
    })
  )

  it.effect("nak takes a delay (default: at once); an invalid delay is a Config error and settles nothing", () =>
    Effect.gen(function* () {
      const { outcome, items } = deliveries(3)
      yield* items[0]!.nak()
      yield* items[1]!.nak("2 seconds")
      const error = yield* Effect.flip(items[2]!.nak(-5))
      assert.strictEqual(error.reason._tag, "Config")
      assert.include(error.message, "-5")
      yield* items[2]!.term()
      assert.deepStrictEqual(Object.fromEntries(outcome), { "1": "nak 0", "2": "nak 2000", "3": "term undefined" })
    })
  )
})

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

  it.effect("work that settles its delivery itself (nak, term) is not acknowledged after it", () =>
    Effect.gen(function* () {
      const { outcome, stream } = deliveries(3)
      yield* Delivery.process(stream, (n, delivery) =>
        n === 1 ? delivery.nak("1 second") : n === 2 ? delivery.term("poison") : Effect.void
      )
      assert.deepStrictEqual(Object.fromEntries(outcome), { "1": "nak 1000", "2": "term poison", "3": "acked" })
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
