/**
 * HTTP streaming (the guide's integration example): an NDJSON export read as it is written, each line decoded with
 * a Schema, resumed after a dropped connection from the last record delivered (`resume`), nothing twice. The guide
 * read a `fetch` body by hand; `HttpStream.stream` adds framing, backpressure (the body is read as the consumer
 * takes), idle detection and the resume.
 */
import { HttpStream } from "@streamemit/http-stream"
import * as HttpServer from "@streamemit/testkit/HttpServer"
import { Effect, Schedule, Schema, Stream } from "effect"
import { runWhenMain } from "./main.ts"

const Row = Schema.Struct({ n: Schema.Number })

export const program = Effect.gen(function* () {
  // The embedded source: 30 rows after `?after=N`; the first response is cut after 10 rows.
  let requests = 0
  const server = yield* HttpServer.make({
    contentType: "application/x-ndjson",
    reply: (request) => {
      const after = Number(new URL(request.url!, "http://x").searchParams.get("after") ?? 0)
      const upTo = ++requests === 1 ? 10 : 30
      const rows = Array.from(
        { length: Math.max(0, upTo - after) },
        (_, i) => `${JSON.stringify({ n: after + i + 1 })}\n`
      )
      // The first response ends without finishing: the connection drops.
      return { body: rows.join(""), end: requests > 1 }
    }
  })
  yield* Effect.forkScoped(
    Effect.andThen(
      Effect.sleep("100 millis"),
      Effect.sync(() => server.exchanges[0]?.response.destroy())
    )
  )
  const rows = yield* HttpStream.stream({
    url: `${server.url}/export`,
    framing: "ndjson",
    schema: Row,
    idleTimeout: "2 seconds",
    reconnect: Schedule.spaced("50 millis"),
    resume: (last) => ({ url: `${server.url}/export?after=${last?.n ?? 0}` })
  }).pipe(Stream.runCollect)
  return { rows: rows.length, first: rows[0]?.n, last: rows.at(-1)?.n, requests }
})

runWhenMain(import.meta.url, program)
