/**
 * StreamEmit against Effect 4's own push bridge (`Stream.callback` + `Queue.offerUnsafe`), same producer, same
 * run: single emits, array emits of 100, and the lossless `StreamEmit.async`.
 */
import { StreamEmit } from "@streamemit/core"
import { Effect, Queue, Stream } from "effect"
import { compareRates, type Row, type Suite, throughputRow } from "../harness.ts"

const ITEMS = 1_000_000
const BURST = 1_000

interface Target {
  readonly single: (value: number) => unknown
  readonly array: (values: ReadonlyArray<number>) => unknown
  readonly end: () => void
}

/** A source that delivers `BURST` values per event-loop turn, like a socket handing over a read. */
const produce = (target: Target, mode: "single" | "array"): void => {
  const batch = Array.from({ length: 100 }, (_, i) => i)
  let sent = 0
  const tick = () => {
    const stop = Math.min(ITEMS, sent + BURST)
    if (mode === "single") {
      for (; sent < stop; sent++) target.single(sent)
    } else {
      for (; sent < stop; sent += 100) target.array(batch)
    }
    if (sent < ITEMS) setImmediate(tick)
    else target.end()
  }
  setImmediate(tick)
}

/** The lossless producer: it awaits its last emit of each burst before producing more. */
const produceLossless = (emit: StreamEmit.Emit<never, never, number, void>): void => {
  let sent = 0
  const tick = () => {
    const stop = Math.min(ITEMS, sent + BURST)
    let last: Promise<void> | undefined
    for (; sent < stop; sent++) last = emit.single(sent)
    if (sent < ITEMS) void last!.then(() => setImmediate(tick))
    else void emit.end()
  }
  setImmediate(tick)
}

const drain =
  <A>(stream: Stream.Stream<A>) =>
  () =>
    Effect.runPromise(Stream.runDrain(stream))

const callback = (mode: "single" | "array") =>
  Stream.callback<number>((queue) =>
    Effect.sync(() =>
      produce(
        {
          single: (value) => Queue.offerUnsafe(queue, value),
          array: (values) => Queue.offerAllUnsafe(queue, values),
          end: () => Queue.endUnsafe(queue)
        },
        mode
      )
    )
  )

const asyncPush = (mode: "single" | "array") =>
  StreamEmit.asyncPush<number>((emit) =>
    Effect.sync(() => produce({ single: emit.single, array: emit.array, end: emit.end }, mode))
  )

export const suite: Suite = {
  name: "core",
  run: async () => {
    const rows: Array<Row> = []
    const cases = [
      { name: "asyncPush, single emits", subject: drain(asyncPush("single")), baseline: drain(callback("single")) },
      { name: "asyncPush, arrays of 100", subject: drain(asyncPush("array")), baseline: drain(callback("array")) },
      {
        name: "async (lossless, buffer 1024), single emits",
        subject: drain(StreamEmit.async<number>((emit) => produceLossless(emit), 1024)),
        baseline: drain(callback("single"))
      }
    ]
    for (const c of cases) {
      const rates = await compareRates({
        items: ITEMS,
        rounds: 7,
        warmup: 2,
        subject: c.subject,
        baseline: c.baseline
      })
      rows.push(throughputRow("core", `${c.name} vs Stream.callback + offerUnsafe`, "items/s", rates, 0.9))
    }
    return rows
  }
}
