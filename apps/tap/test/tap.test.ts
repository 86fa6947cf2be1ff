/**
 * The real CLI, spawned as a child process, against loopback sources and the machine's Postgres and Redis.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { HttpServer, SseServer, Wait, WsServer } from "@streamemit/testkit"
import { Effect } from "effect"
import { Redis } from "ioredis"
import pg from "pg"

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
const PG_URL = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

interface Tap {
  readonly records: () => ReadonlyArray<Record<string, unknown>>
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exit: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly child: ChildProcess.ChildProcess
}

/** Spawns the CLI with this Node (24); killed with the test's Scope if still running. */
const tap = (
  args: ReadonlyArray<string>,
  options: { readonly stdin?: boolean; readonly env?: NodeJS.ProcessEnv } = {}
) =>
  Effect.acquireRelease(
    Effect.sync((): Tap => {
      const child = ChildProcess.spawn(process.execPath, [bin, ...args], {
        stdio: [options.stdin === true ? "pipe" : "ignore", "pipe", "pipe"],
        env: { ...process.env, ...options.env }
      })
      let out = ""
      let err = ""
      child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk))
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (err += chunk))
      const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on("exit", (code, signal) => resolve({ code, signal }))
      )
      return {
        records: () =>
          out
            .split("\n")
            .filter((line) => line !== "")
            .map((line) => JSON.parse(line) as Record<string, unknown>),
        stdout: () => out,
        stderr: () => err,
        exit,
        child
      }
    }),
    (t) => Effect.sync(() => t.child.exitCode === null && t.child.kill("SIGKILL"))
  )

const exitOf = (t: Tap) => Effect.promise(() => t.exit)

const connectedCount = (t: Tap) => (t.stderr().match(/\] connected attempt=/g) ?? []).length

let names = 0
const unique = (label: string) => `tap_${label}_${process.pid}_${++names}`

describe("streamemit-tap", () => {
  it.live(
    "taps every scheme at once and merges them; --count ends it with exit 0",
    () =>
      Effect.gen(function* () {
        const ws = yield* WsServer.make()
        const sse = yield* SseServer.make()
        const lines = yield* HttpServer.make({ contentType: "text/plain" })
        const ndjson = yield* HttpServer.make({ contentType: "application/x-ndjson" })
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "tap-")))),
          (d) => Effect.sync(() => Fs.rmSync(d, { recursive: true, force: true }))
        )
        const channel = unique("pg")
        const redisChannel = unique("redis")
        const t = yield* tap([
          "--count",
          "8",
          ws.url,
          `sse+${sse.url}/events`,
          `${lines.url}/lines`,
          `ndjson+${ndjson.url}/feed`,
          `${PG_URL}${PG_URL.includes("?") ? "&" : "?"}channel=${channel}`,
          `${REDIS_URL}?channel=${redisChannel}`,
          `file://${dir}`,
          "--framing",
          "lines"
        ])
        yield* Wait.until(() => connectedCount(t) === 7, `7 sources connected (stderr: ${t.stderr()})`, 15_000)
        yield* ws.broadcast('{"price":1}')
        yield* sse.publish([{ data: "hello", event: "greeting" }])
        yield* lines.write("plain line\n")
        yield* ndjson.write('{"n":1}\n{"n":2}\n')
        const pgClient = new pg.Client({ connectionString: PG_URL })
        yield* Effect.promise(() => pgClient.connect())
        yield* Effect.promise(() => pgClient.query("SELECT pg_notify($1, '{\"order\":7}')", [channel]))
        yield* Effect.promise(() => pgClient.end())
        const redis = new Redis(REDIS_URL)
        yield* Effect.promise(() => redis.publish(redisChannel, "hi redis"))
        redis.disconnect()
        Fs.writeFileSync(Path.join(dir, "new.txt"), "x")
        const { code } = yield* exitOf(t)
        assert.strictEqual(code, 0, t.stderr())
        const records = t.records()
        assert.strictEqual(records.length, 8)
        const by = (connector: string) => records.filter((r) => r.connector === connector)
        assert.deepStrictEqual(by("websocket")[0]?.data, { price: 1 })
        assert.deepStrictEqual([by("sse")[0]?.event, by("sse")[0]?.data, by("sse")[0]?.id], ["greeting", "hello", "1"])
        assert.strictEqual(by("http-stream").find((r) => r.source === `${lines.url}/lines`)?.data, "plain line")
        assert.deepStrictEqual(
          by("http-stream")
            .filter((r) => r.source === `ndjson+${ndjson.url}/feed`)
            .map((r) => r.data),
          [{ n: 1 }, { n: 2 }]
        )
        assert.deepStrictEqual([by("pg-listen")[0]?.channel, by("pg-listen")[0]?.data], [channel, { order: 7 }])
        assert.deepStrictEqual(
          [by("redis-pubsub")[0]?.channel, by("redis-pubsub")[0]?.data],
          [redisChannel, "hi redis"]
        )
        assert.deepStrictEqual(
          [by("fs-watcher")[0]?.change, by("fs-watcher")[0]?.path],
          ["Add", Path.join(dir, "new.txt")]
        )
        for (const r of records) assert.isFalse(Number.isNaN(Date.parse(String(r.at))))
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "a redis+stream:// source: entries of a group as records, each acknowledged once its line is written",
    () =>
      Effect.gen(function* () {
        const stream = unique("stream")
        const redis = new Redis(REDIS_URL)
        yield* Effect.addFinalizer(() => Effect.promise(() => redis.del(stream).then(() => redis.quit())))
        yield* Effect.promise(() => redis.xadd(stream, "*", "price", "10.5", "sym", "ABC"))
        yield* Effect.promise(() => redis.xadd(stream, "*", "price", "11"))
        const target = new URL(REDIS_URL)
        const t = yield* tap([`redis+stream://${target.host}/${stream}?group=g&from=0`, "--count", "2"])
        assert.strictEqual((yield* exitOf(t)).code, 0, t.stderr())
        const records = t.records()
        assert.deepStrictEqual(
          records.map((r) => [r.connector, r.deliveries, r.data]),
          [
            ["redis-streams", 1, { price: "10.5", sym: "ABC" }],
            ["redis-streams", 1, { price: "11" }]
          ]
        )
        const pending = (yield* Effect.promise(() => redis.xpending(stream, "g"))) as [number]
        assert.strictEqual(Number(pending[0]), 0, "both entries acknowledged")
        // A second tap of the same group sees nothing old: the group moved on.
        yield* Effect.promise(() => redis.xadd(stream, "*", "price", "12"))
        const again = yield* tap([`redis+stream://${target.host}/${stream}?group=g`, "--count", "1"])
        assert.strictEqual((yield* exitOf(again)).code, 0, again.stderr())
        assert.deepStrictEqual(
          again.records().map((r) => r.data),
          [{ price: "12" }]
        )
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "--to adds every message record to a Redis stream; a bad --to exits 2",
    () =>
      Effect.gen(function* () {
        const source = unique("to_source")
        const target = unique("to_target")
        const redis = new Redis(REDIS_URL)
        yield* Effect.addFinalizer(() => Effect.promise(() => redis.del(source, target).then(() => redis.quit())))
        yield* Effect.promise(() => redis.xadd(source, "*", "n", "1"))
        yield* Effect.promise(() => redis.xadd(source, "*", "n", "2"))
        const host = new URL(REDIS_URL).host
        const t = yield* tap([
          `redis+stream://${host}/${source}?group=g&from=0`,
          "--to",
          `redis+stream://${host}/${target}`,
          "--count",
          "2"
        ])
        assert.strictEqual((yield* exitOf(t)).code, 0, t.stderr())
        const entries = (yield* Effect.promise(() => redis.xrange(target, "-", "+"))) as Array<[string, Array<string>]>
        const relayed = entries.map(([, fields]) => {
          const record: Record<string, string> = {}
          for (let i = 0; i < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!
          return record
        })
        assert.deepStrictEqual(
          relayed.map((r) => [r.connector, r.data, r.deliveries]),
          [
            ["redis-streams", JSON.stringify({ n: "1" }), "1"],
            ["redis-streams", JSON.stringify({ n: "2" }), "1"]
          ]
        )
        assert.deepStrictEqual(
          relayed.map((r) => r.at === t.records()[relayed.indexOf(r)]?.at),
          [true, true],
          "the same records as on stdout"
        )
        const pending = (yield* Effect.promise(() => redis.xpending(source, "g"))) as [number]
        assert.strictEqual(Number(pending[0]), 0)
        const bad = yield* tap([`redis+stream://${host}/${source}?group=g`, "--to", "redis://nowhere"])
        assert.strictEqual((yield* exitOf(bad)).code, 2, bad.stderr())
        assert.include(bad.stderr(), "--to redis://nowhere")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "bad URIs exit with code 2 and a message naming the URI and the problem",
    () =>
      Effect.gen(function* () {
        const cases: Array<[string, string]> = [
          ["foo://x", 'unknown scheme "foo:"'],
          ["postgres://postgres@127.0.0.1/test", "?channel="],
          ["redis://127.0.0.1:6379", "?channel="],
          ["redis+stream://127.0.0.1:6379/orders", "?group="],
          ["redis+stream://127.0.0.1:6379/orders?group=g&from=5", "?from="],
          ["ws://", "not a valid URI"],
          ["ws://u:hunter2@", "not a valid URI"],
          ["/no/such/directory/streamemit", "does not exist"]
        ]
        for (const [uri, problem] of cases) {
          const t = yield* tap([uri])
          const { code } = yield* exitOf(t)
          assert.strictEqual(code, 2, `${uri}: ${t.stderr()}`)
          assert.include(t.stderr(), uri.replace("hunter2", "***"))
          assert.notInclude(t.stderr(), "hunter2")
          assert.include(t.stderr(), problem)
        }
        const none = yield* tap([])
        assert.strictEqual((yield* exitOf(none)).code, 2)
        assert.include(none.stderr(), "no sources")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "--checkpoint: a second run resumes an SSE source after the last event written, with a Gap that says resumed",
    () =>
      Effect.gen(function* () {
        const sse = yield* SseServer.make()
        yield* sse.publish(Array.from({ length: 10 }, (_, i) => ({ data: `{"n":${i + 1}}` })))
        const dir = yield* Effect.acquireRelease(
          Effect.promise(() => Fs.promises.mkdtemp(Path.join(Os.tmpdir(), "tap-ckpt-"))),
          (dir) => Effect.promise(() => Fs.promises.rm(dir, { recursive: true, force: true }))
        )
        const file = Path.join(dir, "tap.ckpt")
        const first = yield* tap(["--checkpoint", file, "--count", "4", `sse+${sse.url}`])
        assert.strictEqual((yield* exitOf(first)).code, 0, first.stderr())
        assert.deepStrictEqual(
          first.records().map((r) => r.id),
          ["1", "2", "3", "4"]
        )
        const second = yield* tap(["--checkpoint", file, "--count", "3", `sse+${sse.url}`])
        assert.strictEqual((yield* exitOf(second)).code, 0, second.stderr())
        assert.deepStrictEqual(
          second.records().map((r) => r.id),
          ["5", "6", "7"]
        )
        assert.match(second.stderr(), /gap .*delivery="resumed"/)
        assert.strictEqual(sse.lastEventIds().at(-1), "4")
        // A source without a cursor says so.
        const ws = yield* WsServer.make()
        const third = yield* tap(["--checkpoint", file, "--duration", "300ms", ws.url])
        yield* exitOf(third)
        assert.include(third.stderr(), "no cursor to resume from")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "SIGINT closes every source (the servers see their connections closed) and exits 130",
    () =>
      Effect.gen(function* () {
        const ws = yield* WsServer.make()
        const sse = yield* SseServer.make()
        const t = yield* tap([ws.url, `sse+${sse.url}`])
        yield* Wait.until(() => connectedCount(t) === 2, "2 sources connected", 15_000)
        assert.strictEqual(yield* ws.open, 1)
        assert.strictEqual(yield* sse.http.open, 1)
        t.child.kill("SIGINT")
        const { code } = yield* exitOf(t)
        assert.strictEqual(code, 130, t.stderr())
        yield* Wait.until(
          () => Effect.runSync(ws.open) === 0 && Effect.runSync(sse.http.open) === 0,
          "connections closed"
        )
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "a source that fails for good ends the tap with exit 1 and its error, unless --keep-going",
    () =>
      Effect.gen(function* () {
        const broken = yield* HttpServer.make({ contentType: "text/plain", reply: () => ({ status: 404, end: true }) })
        const healthy = yield* HttpServer.make({ contentType: "text/plain", reply: () => ({ body: "a\nb\n" }) })
        const failing = yield* tap([`${broken.url}/missing`, healthy.url])
        const { code } = yield* exitOf(failing)
        assert.strictEqual(code, 1)
        assert.include(failing.stderr(), `${broken.url}/missing`)
        assert.strictEqual(failing.stderr().split("HTTP 404").length - 1, 1, `the error once: ${failing.stderr()}`)

        const going = yield* tap(["--keep-going", "--count", "2", `${broken.url}/missing`, healthy.url])
        assert.strictEqual((yield* exitOf(going)).code, 0, going.stderr())
        assert.deepStrictEqual(
          going.records().map((r) => r.data),
          ["a", "b"]
        )
        assert.include(going.stderr(), "HTTP 404")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "--events puts lifecycle events in-band; --duration ends the tap",
    () =>
      Effect.gen(function* () {
        const ws = yield* WsServer.make()
        const t = yield* tap(["--events", "--duration", "1500ms", ws.url])
        yield* ws.awaitConnections(1, 10_000)
        yield* Effect.sleep("300 millis")
        yield* ws.broadcast("tick")
        const { code } = yield* exitOf(t)
        assert.strictEqual(code, 0, t.stderr())
        const kinds = t.records().map((r) => (r.event === undefined ? `data:${String(r.data)}` : String(r.event)))
        assert.deepStrictEqual(kinds.slice(0, 3), ["connecting", "connected", "data:tick"])
        assert.notInclude(t.stderr(), "] connected")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "--demo taps every embedded source for a few seconds",
    () =>
      Effect.gen(function* () {
        const t = yield* tap(["--demo", "--duration", "4s", "--stats"])
        const { code } = yield* exitOf(t)
        assert.strictEqual(code, 0, t.stderr())
        const connectors = new Set(t.records().map((r) => r.connector))
        for (const connector of ["websocket", "sse", "http-stream", "fs-watcher"])
          assert.isTrue(connectors.has(connector), connector)
        // Postgres and Redis run on this machine: the demo finds them (and says so on stderr when it does not).
        assert.isTrue(connectors.has("pg-listen"), t.stderr())
        assert.isTrue(connectors.has("redis-pubsub"), t.stderr())
        const stats = t
          .stderr()
          .split("\n")
          .filter((line) => line.startsWith("tap: stats:"))
        assert.strictEqual(stats.length, 6, t.stderr())
        for (const line of stats) assert.notInclude(line, " total=0 ", line)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "bad flags exit 2 with one line and a hint on stderr, nothing on stdout",
    () =>
      Effect.gen(function* () {
        for (const args of [["--bogus"], ["--count", "abc", "ws://127.0.0.1:1"], ["--pretty", "--json", "ws://x"]]) {
          const t = yield* tap(args)
          const { code } = yield* exitOf(t)
          assert.strictEqual(code, 2, args.join(" "))
          assert.strictEqual(t.records().length, 0, "no help on stdout (it would go into | jq)")
          const lines = t.stderr().trim().split("\n")
          assert.strictEqual(lines.length, 2, t.stderr())
          assert.include(lines[1], "--help")
        }
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "SIGTERM and SIGHUP close everything (the demo's directory too), print the summary, exit 143 and 129",
    () =>
      Effect.gen(function* () {
        for (const [signal, expected] of [
          ["SIGTERM", 143],
          ["SIGHUP", 129]
        ] as const) {
          const t = yield* tap(["--demo", "--stats", "--duration", "30s"])
          yield* Wait.until(() => connectedCount(t) >= 4, "the embedded sources connected", 15_000)
          const dir = /(\/\S*streamemit-demo-\w+)/.exec(t.stderr())?.[1]
          assert.isDefined(dir, t.stderr())
          assert.isTrue(Fs.existsSync(dir!))
          t.child.kill(signal)
          const { code } = yield* exitOf(t)
          assert.strictEqual(code, expected, t.stderr())
          assert.include(t.stderr(), "tap: stats:", "the summary is printed on a signal too")
          assert.isFalse(Fs.existsSync(dir!), "the demo's temp directory is removed")
        }
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "flags after a `--` (as pnpm passes them through) are flags, and the last --duration wins",
    () =>
      Effect.gen(function* () {
        const ws = yield* WsServer.make()
        const started = Date.now()
        const t = yield* tap(["--duration", "30s", "--", "--duration", "1s", ws.url])
        const { code } = yield* exitOf(t)
        assert.strictEqual(code, 0, t.stderr())
        assert.isBelow(Date.now() - started, 15_000, "ran about 1 s, not 30 s")
        assert.notInclude(t.stderr(), "--duration", "no source named after a flag")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "the demo masks the passwords of PG_URL and REDIS_URL",
    () =>
      Effect.gen(function* () {
        const pgUrl = new URL(PG_URL)
        pgUrl.password = "s3cret-pg"
        const t = yield* tap(["--demo", "--duration", "2s"], {
          env: { PG_URL: pgUrl.toString(), REDIS_URL: "redis://:s3cret-redis@127.0.0.1:1" }
        })
        yield* exitOf(t)
        assert.include(t.stderr(), "postgres:")
        assert.notInclude(t.stderr(), "s3cret")
        assert.notInclude(JSON.stringify(t.records()), "s3cret")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "a source that never connects: exit 1 at the end of --duration, or after --give-up-after attempts",
    () =>
      Effect.gen(function* () {
        const refused = "ws://127.0.0.1:1/feed"
        const t = yield* tap(["--duration", "1s", refused])
        assert.strictEqual((yield* exitOf(t)).code, 1, t.stderr())
        assert.include(t.stderr(), `never connected: ${refused}`)
        assert.include(t.stderr(), "connecting attempt=1", "the first attempt's lifecycle is on stderr")

        const giveUp = yield* tap(["--give-up-after", "2", refused])
        assert.strictEqual((yield* exitOf(giveUp)).code, 1, giveUp.stderr())
        assert.include(giveUp.stderr(), "connecting attempt=2")
        assert.notInclude(giveUp.stderr(), "connecting attempt=3")
        assert.strictEqual(giveUp.stderr().split("ECONNREFUSED").length - 1, 2, "each failed attempt once")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "wss:// against a plain server and --fail-fast on an unknown host end at once with a readable error",
    () =>
      Effect.gen(function* () {
        const ws = yield* WsServer.make()
        const tls = yield* tap([ws.url.replace("ws:", "wss:")])
        assert.strictEqual((yield* exitOf(tls)).code, 1)
        assert.include(tls.stderr(), "does not speak TLS")
        assert.notInclude(tls.stderr(), "SSL routines")
        assert.notInclude(tls.stderr(), "connecting attempt=2", "not retried")

        const dns = yield* tap(["--fail-fast", "ws://no-such-host.invalid/feed"])
        assert.strictEqual((yield* exitOf(dns)).code, 1)
        assert.include(dns.stderr(), "ENOTFOUND")
        assert.notInclude(dns.stderr(), "connecting attempt=2", "not retried")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "--count counts messages, not the lifecycle events --events puts in-band",
    () =>
      Effect.gen(function* () {
        const lines = yield* HttpServer.make({ contentType: "text/plain", reply: () => ({ body: "a\nb\nc\nd\n" }) })
        const t = yield* tap(["--events", "--count", "3", lines.url])
        assert.strictEqual((yield* exitOf(t)).code, 0, t.stderr())
        const records = t.records()
        assert.deepStrictEqual(
          records.filter((r) => r.event === undefined).map((r) => r.data),
          ["a", "b", "c"]
        )
        assert.include(
          records.map((r) => r.event),
          "connected"
        )
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "--send-stdin sends each line of stdin to the ws:// sources; --format writes a line from a template",
    () =>
      Effect.gen(function* () {
        const ws = yield* WsServer.make({
          onConnection: (connection) =>
            connection.socket.on("message", (data) =>
              connection.socket.send(JSON.stringify({ echo: String(data), price: 42 }))
            )
        })
        const t = yield* tap(
          ["--send-stdin", "--count", "2", "--format", "{connector} {data.echo} {data.price}", ws.url],
          {
            stdin: true
          }
        )
        t.child.stdin!.write("hello\n")
        t.child.stdin!.write("world\n")
        const { code } = yield* exitOf(t)
        assert.strictEqual(code, 0, t.stderr())
        const connection = yield* ws.awaitConnections(1)
        assert.deepStrictEqual(connection.received, ["hello", "world"])
        assert.deepStrictEqual(t.stdout().trim().split("\n"), ["websocket hello 42", "websocket world 42"])
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "--pretty: times in UTC marked Z, fs lines without the change repeated",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "tap-")))),
          (d) => Effect.sync(() => Fs.rmSync(d, { recursive: true, force: true }))
        )
        const t = yield* tap(["--pretty", "--count", "1", dir])
        yield* Wait.until(() => connectedCount(t) === 1, "watching", 15_000)
        Fs.writeFileSync(Path.join(dir, "new.txt"), "x")
        assert.strictEqual((yield* exitOf(t)).code, 0, t.stderr())
        const line = t.stdout().trim()
        assert.match(line, /^\d\d:\d\d:\d\d\.\d\d\dZ /)
        assert.match(line, /change=Add path=\S+new\.txt$/, "no trailing Add")
      }).pipe(Effect.scoped),
    30_000
  )
})
