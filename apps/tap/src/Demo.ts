/**
 * The demo's embedded sources, on loopback and in a temp directory, each producing a little traffic: a WebSocket
 * price ticker, an SSE feed with ids, an NDJSON feed, a directory whose files change — and Postgres NOTIFY and
 * Redis PUBLISH producers when those servers are reachable at `PG_URL` / `REDIS_URL`.
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { ConnectorError } from "@streamemit/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import pg from "pg"
import { WebSocketServer } from "ws"

export interface Demo {
  readonly uris: ReadonlyArray<string>
  /** What was started and what was skipped (and why), for stderr. */
  readonly notes: ReadonlyArray<string>
}

const every = (millis: number, tick: (n: number) => void): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let n = 0
      return setInterval(() => tick(++n), millis)
    }),
    (timer) => Effect.sync(() => clearInterval(timer))
  ).pipe(Effect.asVoid)

const listen = (server: Http.Server): Effect.Effect<number, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<number>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as Net.AddressInfo).port)))
    }),
    () =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

const websocketSource = Effect.gen(function* () {
  const server = Http.createServer()
  const wss = new WebSocketServer({ server })
  const port = yield* listen(server)
  yield* Effect.addFinalizer(() => Effect.sync(() => wss.close()))
  let price = 100
  yield* every(300, (n) => {
    price = Math.round((price + (Math.random() - 0.5) * 2) * 100) / 100
    const message = JSON.stringify({ tick: n, symbol: "DEMO", price })
    for (const client of wss.clients) client.send(message)
  })
  return `ws://127.0.0.1:${port}/prices`
})

const sseSource = Effect.gen(function* () {
  const responses = new Set<Http.ServerResponse>()
  const log: Array<string> = []
  const server = Http.createServer((request, response) => {
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" })
    const last = Number(request.headers["last-event-id"] ?? 0)
    response.write(`retry: 1000\n\n${log.slice(Number.isInteger(last) ? last : 0).join("")}`)
    responses.add(response)
    response.on("close", () => responses.delete(response))
  })
  const port = yield* listen(server)
  yield* every(400, (n) => {
    const event = `id: ${n}\nevent: ${n % 3 === 0 ? "alert" : "status"}\ndata: ${JSON.stringify({ seq: n, ok: n % 3 !== 0 })}\n\n`
    log.push(event)
    for (const response of responses) response.write(event)
  })
  yield* every(2000, () => {
    for (const response of responses) response.write(": ping\n\n")
  })
  return `sse+http://127.0.0.1:${port}/events`
})

const ndjsonSource = Effect.gen(function* () {
  const responses = new Set<Http.ServerResponse>()
  const server = Http.createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/x-ndjson" })
    responses.add(response)
    response.on("close", () => responses.delete(response))
  })
  const port = yield* listen(server)
  yield* every(350, (n) => {
    const line = `${JSON.stringify({ n, level: n % 4 === 0 ? "warn" : "info", msg: `job ${n} done` })}\n`
    for (const response of responses) response.write(line)
  })
  return `ndjson+http://127.0.0.1:${port}/log`
})

const directorySource = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "streamemit-demo-"))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )
  yield* every(600, (n) => {
    const file = Path.join(dir, `note-${n % 3}.txt`)
    if (n % 4 === 3 && Fs.existsSync(file)) Fs.rmSync(file)
    else Fs.writeFileSync(file, `edit ${n}\n`)
  })
  return dir
})

/** Whether `connect` succeeds within 1.5 s: a demo source whose server is not there is skipped, with a note. */
const reachable = (connect: () => Promise<unknown>) =>
  Effect.tryPromise(connect).pipe(
    Effect.timeout("1500 millis"),
    Effect.as(true),
    Effect.orElseSucceed(() => false)
  )

/** A producer when the server answers within a second; a note saying why not otherwise. */
const postgresSource = (url: string) =>
  Effect.gen(function* () {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
    client.on("error", () => {})
    const connected = yield* reachable(() => client.connect())
    if (!connected) {
      client.end().catch(() => {})
      return { note: `postgres: not reachable at ${ConnectorError.redactUrl(url)} (set PG_URL): skipped` }
    }
    yield* Effect.addFinalizer(() => Effect.promise(() => client.end().catch(() => {})))
    yield* every(500, (n) => {
      client
        .query("SELECT pg_notify('streamemit_demo', $1)", [JSON.stringify({ order: n, status: "paid" })])
        .catch(() => {})
    })
    const tap = new URL(url)
    tap.searchParams.append("channel", "streamemit_demo")
    return { uri: tap.toString(), note: `postgres: NOTIFY streamemit_demo at ${ConnectorError.redactUrl(url)}` }
  })

const redisSource = (url: string) =>
  Effect.gen(function* () {
    const client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: 1000,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0
    })
    client.on("error", () => {})
    const connected = yield* reachable(() => client.connect())
    if (!connected) {
      client.disconnect()
      return { note: `redis: not reachable at ${ConnectorError.redactUrl(url)} (set REDIS_URL): skipped` }
    }
    yield* Effect.addFinalizer(() => Effect.sync(() => client.disconnect()))
    yield* every(450, (n) => {
      client.publish(`streamemit:demo:${n % 2 === 0 ? "eu" : "us"}`, JSON.stringify({ visitor: n })).catch(() => {})
    })
    const tap = new URL(url)
    tap.searchParams.append("pattern", "streamemit:demo:*")
    return { uri: tap.toString(), note: `redis: PUBLISH streamemit:demo:* at ${ConnectorError.redactUrl(url)}` }
  })

export const start: Effect.Effect<Demo, never, Scope.Scope> = Effect.gen(function* () {
  const uris = [yield* websocketSource, yield* sseSource, yield* ndjsonSource, yield* directorySource]
  const notes = [`embedded: ${uris.join(", ")}`]
  const [postgres, redis] = yield* Effect.all(
    [
      postgresSource(process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"),
      redisSource(process.env.REDIS_URL ?? "redis://127.0.0.1:6379")
    ],
    { concurrency: "unbounded" }
  )
  for (const external of [postgres, redis]) {
    if ("uri" in external && external.uri !== undefined) uris.push(external.uri)
    notes.push(external.note)
  }
  return { uris, notes }
})
