/**
 * Resuming an NDJSON feed across runs from a checkpoint: the first request of a restart is built from the saved
 * cursor, the stream opens with `Gap { resumed }`, and only records after the last finished one come again.
 */
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Checkpoint, Delivery, type Lifecycle } from "@streamemit/core"
import { Child, HttpServer, Wait } from "@streamemit/testkit"
import { Effect, Schema, Stream } from "effect"
import { HttpStream } from "../src/index.ts"

const Record = Schema.Struct({ n: Schema.Number })

/** `GET /feed?after=N` answers the records after N (of 50), one NDJSON line each, then ends. */
const feed = HttpServer.make({
  contentType: "application/x-ndjson",
  reply: (request) => {
    const after = Number(new URL(request.url!, "http://x").searchParams.get("after") ?? 0)
    const lines = Array.from({ length: Math.max(0, 50 - after) }, (_, i) => `${JSON.stringify({ n: after + i + 1 })}\n`)
    return { body: lines.join(""), end: true }
  }
})

describe("HttpStream.checkpointed", () => {
  it.live("a second run resumes after the last record whose work is done, opening with a Gap that says resumed", () =>
    Effect.gen(function* () {
      const server = yield* feed
      const options = () => ({
        url: `${server.url}/feed`,
        framing: "ndjson" as const,
        schema: Record,
        checkpoint: { key: "feed", every: 5, cursorOf: (record: { readonly n: number }) => String(record.n) },
        resume: (cursor: string | undefined) => ({ url: `${server.url}/feed?after=${cursor ?? 0}` })
      })
      const run = (take: number) =>
        Effect.scoped(
          Effect.gen(function* () {
            const { handle, deliveries } = yield* HttpStream.checkpointed(options())
            const signals: Array<Lifecycle.Event> = []
            yield* handle.events.pipe(
              Stream.runForEach((event) => Effect.sync(() => signals.push(event))),
              Effect.forkScoped
            )
            const seen: Array<number> = []
            yield* Delivery.process(deliveries.pipe(Stream.take(take)), (record) =>
              Effect.sync(() => seen.push(record.n))
            )
            return { seen, gaps: signals.filter((e): e is Lifecycle.Gap => e._tag === "Gap") }
          })
        )
      const first = yield* run(12)
      assert.deepStrictEqual(
        first.seen,
        Array.from({ length: 12 }, (_, i) => i + 1)
      )
      assert.deepStrictEqual(first.gaps, [])
      const second = yield* run(10)
      assert.deepStrictEqual(
        second.seen,
        Array.from({ length: 10 }, (_, i) => i + 13)
      )
      assert.deepStrictEqual(
        second.gaps.map((g) => g.delivery),
        ["resumed"]
      )
      // The first request of the second run was built from the saved cursor.
      assert.include(server.exchanges.at(-1)!.request.url!, "after=12")
    }).pipe(Effect.provide(Checkpoint.layerMemory), Effect.scoped)
  )

  it.live(
    "kill -9 between commits, records added while down, restart: nothing lost, duplicates ≤ the unsaved batch",
    () =>
      Effect.gen(function* () {
        // A growing feed: GET ?after=N answers the records after N that exist now (the body then ends: follow).
        let total = 60
        const server = yield* HttpServer.make({
          contentType: "application/x-ndjson",
          reply: (request) => {
            const after = Number(new URL(request.url!, "http://x").searchParams.get("after") ?? 0)
            const lines = Array.from(
              { length: Math.max(0, total - after) },
              (_, i) => `${JSON.stringify({ n: after + i + 1 })}\n`
            )
            return { body: lines.join(""), end: true }
          }
        })
        const dir = yield* Child.tempDir("streamemit-http-ckpt")
        const [file, results] = [Path.join(dir, "ckpt.json"), Path.join(dir, "results")]
        const lines = () => Child.lines(results)
        const script = new URL("./checkpoint-process.ts", import.meta.url).pathname
        const start = Child.ready(script, [`${server.url}/feed`, file, results])
        const first = yield* start
        yield* Wait.until(
          () => Effect.runPromise(Effect.map(lines(), (list) => list.length >= 35)),
          "the first run at work",
          10_000
        )
        first.kill("SIGKILL")
        total = 90
        yield* start
        yield* Wait.until(
          () =>
            Effect.runPromise(Effect.map(lines(), (list) => new Set(list.filter((l) => /^\d+$/.test(l))).size === 90)),
          "every record after the restart",
          10_000
        )
        const all = yield* lines()
        const numbers = all.filter((l) => /^\d+$/.test(l)).map(Number)
        assert.deepStrictEqual(
          [...new Set(numbers)].sort((a, b) => a - b),
          Array.from({ length: 90 }, (_, i) => i + 1)
        )
        // One batch of 10 unsaved, and those done while its save was being written.
        assert.isAtMost(numbers.length - 90, 20, `duplicates: ${numbers.length - 90}`)
        assert.include(all, "gap resumed")
      }).pipe(Effect.scoped),
    30_000
  )
})
