/**
 * From a URI to a running connector: the scheme picks the connector, the rest of the URI its options. Every source
 * becomes the same shape — a handle and a function that turns its items into the fields of an output record.
 */
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Checkpoint, Connector, ConnectorError, type Delivery } from "@streamemit/core"
import { FsWatcher } from "@streamemit/fs-watcher"
import { HttpStream } from "@streamemit/http-stream"
import { PgListen } from "@streamemit/pg-listen"
import { RedisPubSub } from "@streamemit/redis-pubsub"
import { RedisStreams } from "@streamemit/redis-streams"
import { Sse } from "@streamemit/sse"
import { WebSocket } from "@streamemit/websocket"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

export type Framing = HttpStream.Framing

/** A URI the tap cannot use: exit code 2, with the URI and what is wrong. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {
  override readonly [Runtime.errorExitCode]: number = 2
}

export interface Spec {
  /** The URI as given, with any password redacted: the `source` field of every record. */
  readonly label: string
  readonly connector: string
  readonly open: Effect.Effect<Source, ConnectorError.ConnectorError, Scope.Scope>
  /** Resumes from its checkpoint (`--checkpoint`), or a durable source resumes by itself. */
  readonly resumable?: boolean | undefined
}

export interface Source {
  readonly handle: Connector.Handle<unknown, unknown>
  /** The record's fields for one item: `data` plus the connector's own (channel, id, path…). */
  readonly fields: (item: unknown) => Record<string, unknown>
  /** What to do once an item's line is written (a durable source acknowledges it: at-least-once). */
  readonly written?: ((item: unknown) => Effect.Effect<void, ConnectorError.ConnectorError>) | undefined
  /** Sends a text message to the source (ws only): waits for the connection. */
  readonly send?: ((text: string) => Effect.Effect<void, ConnectorError.ConnectorError>) | undefined
}

/** How every source of a tap opens. */
export interface Settings {
  readonly framing: Framing
  /** Labels the metrics. */
  readonly name: string
  /** The reconnect option of every connector (`true`: the connector's default). */
  readonly reconnect: Connector.CommonOptions<unknown>["reconnect"]
  /** Where sources with a cursor keep it (`--checkpoint`); each under its URI. */
  readonly checkpoint?: Checkpoint.Store["Service"] | undefined
}

/**
 * The reconnect policy of the tap's flags: the connectors' default backoff, ending after `giveUpAfter` failed
 * attempts in a row, and at once on an unknown host with `failFast` (DNS can come back, so that is the user's call).
 */
export const reconnect = (flags: {
  readonly giveUpAfter: Option.Option<number>
  readonly failFast: boolean
}): Connector.CommonOptions<unknown>["reconnect"] => {
  if (Option.isNone(flags.giveUpAfter) && !flags.failFast) return true
  let schedule = Connector.defaultReconnect.pipe(Schedule.setInputType<ConnectorError.ConnectorError>())
  if (Option.isSome(flags.giveUpAfter)) schedule = schedule.pipe(Schedule.upTo({ times: flags.giveUpAfter.value - 1 }))
  if (flags.failFast) {
    schedule = schedule.pipe(Schedule.while(({ input }) => ConnectorError.systemCode(input) !== "ENOTFOUND"))
  }
  return schedule
}

/** JSON when the text is JSON, the text otherwise. */
export const jsonOrText = (text: string): unknown => {
  const first = text.charCodeAt(0)
  // Only texts that can start a JSON value are tried: {, [, ", digits, -, t, f, n.
  if (
    first === 123 ||
    first === 91 ||
    first === 34 ||
    first === 45 ||
    (first >= 48 && first <= 57) ||
    /^(true|false|null)$/.test(text)
  ) {
    try {
      return JSON.parse(text)
    } catch {
      return text
    }
  }
  return text
}

/** The URI as given, with a password (user:password@) masked even when the URI does not parse. */
const shown = (uri: string) => {
  const redacted = ConnectorError.redactUrl(uri)
  return redacted === "<invalid URL>" ? uri.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@") : redacted
}

const usage = (uri: string, problem: string) => new UsageError({ message: `${shown(uri)}: ${problem}` })

const source = <A>(
  open: Effect.Effect<Connector.Handle<unknown, A>, ConnectorError.ConnectorError, Scope.Scope>,
  fields: (item: A) => Record<string, unknown>
): Effect.Effect<Source, ConnectorError.ConnectorError, Scope.Scope> =>
  Effect.map(open, (handle) => ({
    handle: handle as Connector.Handle<unknown, unknown>,
    fields: fields as Source["fields"]
  }))

/** Names a source by its URI and picks its connector; a bad URI is a `UsageError` naming it. */
export const parse = (uri: string, settings: Settings): Effect.Effect<Spec, UsageError> =>
  Effect.gen(function* () {
    const { name, reconnect } = settings
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase()
    if (scheme === undefined || /^[a-z]$/i.test(scheme)) {
      // A plain path (a Windows drive letter is a path too): the file-system watcher.
      return fsSpec(uri, Path.resolve(uri), name)
    }
    const label = ConnectorError.redactUrl(uri)
    let url: URL
    try {
      url = new URL(uri)
    } catch {
      return yield* Effect.fail(usage(uri, "not a valid URI"))
    }
    switch (scheme) {
      case "ws":
      case "wss":
        if (url.host === "") return yield* Effect.fail(usage(uri, "a ws:// URI needs a host"))
        return {
          label,
          connector: "websocket",
          open: Effect.map(WebSocket.make({ url: uri, name, reconnect }), (handle) => ({
            handle: handle as Connector.Handle<unknown, unknown>,
            fields: (text: unknown) => ({ data: jsonOrText(text as string) }),
            send: (text: string) => handle.send(text)
          }))
        }
      case "sse+http":
      case "sse+https": {
        const target = uri.slice("sse+".length)
        const fields = (e: Sse.Event) => ({ id: e.id, event: e.event, data: jsonOrText(e.data) })
        const store = settings.checkpoint
        if (store === undefined) {
          return { label, connector: "sse", open: source(Sse.make({ url: target, name, reconnect }), fields) }
        }
        return {
          label,
          connector: "sse",
          resumable: true,
          // The last event id whose line is written is saved under the URI; a restart sends it as Last-Event-ID.
          open: Effect.map(
            Sse.checkpointed({ url: target, name, reconnect, checkpoint: { key: label } }).pipe(
              Effect.provideService(Checkpoint.Store, store)
            ),
            ({ handle, deliveries, signals }) => ({
              handle: { ...handle, messages: deliveries, signals } as Connector.Handle<unknown, unknown>,
              fields: (item: unknown) => fields((item as Delivery.Delivery<Sse.Event>).item),
              written: (item: unknown) => (item as Delivery.Delivery<Sse.Event>).ack
            })
          )
        }
      }
      case "ndjson+http":
      case "ndjson+https":
        return httpSpec(label, uri.slice("ndjson+".length), { ...settings, framing: "ndjson" })
      case "http":
      case "https":
        return httpSpec(label, uri, settings)
      case "postgres":
      case "postgresql": {
        const channels = url.searchParams.getAll("channel")
        if (channels.length === 0) {
          return yield* Effect.fail(usage(uri, "a postgres:// URI needs at least one ?channel=NAME"))
        }
        url.searchParams.delete("channel")
        return {
          label,
          connector: "pg-listen",
          open: source(
            PgListen.make({ connection: url.toString(), channels, name, reconnect }),
            (n: PgListen.Notification) => ({
              channel: n.channel,
              processId: n.processId,
              data: jsonOrText(n.payload)
            })
          )
        }
      }
      case "redis":
      case "rediss": {
        const channels = url.searchParams.getAll("channel")
        const patterns = url.searchParams.getAll("pattern")
        if (channels.length === 0 && patterns.length === 0) {
          return yield* Effect.fail(usage(uri, "a redis:// URI needs at least one ?channel=NAME or ?pattern=GLOB"))
        }
        const connection = new URL(url)
        connection.search = ""
        return {
          label,
          connector: "redis-pubsub",
          open: source(
            RedisPubSub.make({ connection: connection.toString(), channels, patterns, name, reconnect }),
            (m: RedisPubSub.Message) => ({
              channel: m.channel,
              ...(m.pattern === undefined ? {} : { pattern: m.pattern }),
              data: jsonOrText(m.payload)
            })
          )
        }
      }
      case "redis+stream":
      case "rediss+stream": {
        const stream = decodeURIComponent(url.pathname.slice(1))
        const group = url.searchParams.get("group")
        if (stream === "" || group === null || group === "") {
          return yield* Effect.fail(
            usage(uri, `a ${scheme}:// URI needs a stream and a group: ${scheme}://host:port/STREAM?group=GROUP`)
          )
        }
        const from = url.searchParams.get("from") ?? "$"
        if (from !== "$" && from !== "0") {
          return yield* Effect.fail(
            usage(uri, `?from= is $ (new entries, the default) or 0 (the whole stream), not "${from}"`)
          )
        }
        const db = url.searchParams.get("db")
        const connection = new URL(url.toString().replace(/^(rediss?)\+stream:/i, "$1:"))
        connection.search = ""
        connection.pathname = db === null ? "" : `/${db}`
        const consumer = url.searchParams.get("consumer") ?? undefined
        return {
          label,
          connector: "redis-streams",
          resumable: true,
          open: Effect.map(
            RedisStreams.make({
              connection: connection.toString(),
              stream,
              group,
              consumer,
              createGroup: from,
              name,
              reconnect
            }),
            (handle) => ({
              handle: handle as Connector.Handle<unknown, unknown>,
              fields: (item: unknown) => {
                const delivery = item as Delivery.Delivery<RedisStreams.Entry>
                return { id: delivery.id, deliveries: delivery.deliveries, data: delivery.item }
              },
              // Acknowledged once its line is out: a tap that dies before leaves it to be delivered again.
              written: (item: unknown) => (item as Delivery.Delivery<RedisStreams.Entry>).ack
            })
          )
        }
      }
      case "file": {
        let path: string
        try {
          path = fileURLToPath(url)
        } catch (cause) {
          return yield* Effect.fail(usage(uri, `not a file URI for this system (${(cause as Error).message})`))
        }
        return fsSpec(label, path, name)
      }
      default:
        return yield* Effect.fail(
          usage(
            uri,
            `unknown scheme "${scheme}:" (known: ws, wss, sse+http, sse+https, http, https, ndjson+http, ndjson+https, postgres, redis, redis+stream, file, or a plain path)`
          )
        )
    }
  })

const httpSpec = (label: string, url: string, { framing, name, reconnect }: Settings): Spec => ({
  label,
  connector: "http-stream",
  open:
    framing === "bytes"
      ? source(HttpStream.make({ url, framing: "bytes", name, reconnect }), (chunk: Uint8Array) => ({
          bytes: chunk.byteLength,
          data: Buffer.from(chunk).toString("base64")
        }))
      : framing === "sse"
        ? source(HttpStream.make({ url, framing: "sse", name, reconnect }), (e: HttpStream.SseEvent) => ({
            id: e.id,
            event: e.event,
            data: jsonOrText(e.data)
          }))
        : framing === "ndjson"
          ? source(HttpStream.make<unknown>({ url, framing: "ndjson", name, reconnect }), (value: unknown) => ({
              data: value
            }))
          : source(HttpStream.make({ url, name, reconnect }), (line: string) => ({ data: jsonOrText(line) }))
})

const fsSpec = (label: string, path: string, name: string): Spec => ({
  label,
  connector: "fs-watcher",
  // The change and the path say it all: no `data` repeating the change.
  open: source(FsWatcher.make({ paths: path, initial: false, name }), (change: FsWatcher.Change) => ({
    change: change._tag,
    path: change.path
  }))
})
