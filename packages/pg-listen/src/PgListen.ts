/**
 * Postgres LISTEN/NOTIFY as a scoped, bounded, self-healing stream: one dedicated `pg` connection per attempt,
 * `LISTEN` on every channel (quoted: any name works, none can inject SQL), `SELECT 1` as the liveness probe, and
 * `UNLISTEN *` + close when done. Reconnect, lifecycle (re-`LISTEN`, then `Gap`, then `onResync`, then live),
 * overflow and metrics are core's.
 *
 * @since 0.1.0
 */
import { Checkpoint, Connector, ConnectorError, Decode, type Delivery, type Driver } from "@streamemit/core"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import pg from "pg"

const connector = "pg-listen"

/** The server's limit (NAMEDATALEN - 1): longer identifiers are truncated, so a longer channel never matches. */
const maxChannelBytes = 63
/** NOTIFY payloads must be shorter than 8000 bytes in the default configuration. */
const maxPayloadBytes = 7999
/** A paused socket still finishes the chunk being parsed: 64 KiB of notifications of at least 12 bytes. */
const burstAfterPause = 8192

/**
 * One notification. `payload` is the text ("" when the NOTIFY had none), or the decoded value with a `schema`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Notification<A = string> {
  readonly channel: string
  readonly payload: A
  /** The server process that sent it. */
  readonly processId: number
}

/**
 * A connection string (`postgres://…`), as is or `Redacted` (kept out of logs and errors), or a `pg` client
 * configuration.
 *
 * @since 0.1.0
 * @category options
 */
export type Connection = string | Redacted.Redacted<string> | pg.ClientConfig

/**
 * @since 0.1.0
 * @category options
 */
export interface Options<A> extends Connector.CommonOptions<Notification<A>> {
  /** Where to connect; an Effect is evaluated on every attempt (rotated passwords). */
  readonly connection: Connector.PerAttempt<Connection>
  /** Channels to LISTEN on (more can be added on the handle). */
  readonly channels: ReadonlyArray<string>
  /** Decode payloads as JSON with this Schema. */
  readonly schema?: Schema.Decoder<A> | undefined
  /** A payload the Schema rejects fails the stream (`Decode`) or is skipped and counted. Default `"fail"`. */
  readonly onDecodeError?: Decode.OnDecodeError | undefined
}

/**
 * The handle: the messages and lifecycle of core, plus NOTIFY and live channel changes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handle<A = string> extends Connector.Handle<pg.Client, Notification<A>> {
  /** `NOTIFY channel, payload` on the listening connection; a `Closed` error while disconnected (not queued). */
  readonly notify: (channel: string, payload?: string) => Effect.Effect<void, ConnectorError.ConnectorError>
  /** Adds a channel: LISTEN now when connected, and on every reconnect. */
  readonly listen: (channel: string) => Effect.Effect<void, ConnectorError.ConnectorError>
  /** Removes a channel: UNLISTEN now when connected. */
  readonly unlisten: (channel: string) => Effect.Effect<void, ConnectorError.ConnectorError>
  /** The channels listened to. */
  readonly channels: Effect.Effect<ReadonlyArray<string>>
}

interface Resolved<A> {
  readonly common: Connector.Resolved<Notification<A>>
  readonly connection: Effect.Effect<pg.ClientConfig, ConnectorError.ConnectorError>
  readonly channels: ReadonlyArray<string>
  readonly schema: Schema.Decoder<A> | undefined
  readonly onDecodeError: Decode.OnDecodeError
}

const config = (option: string, value: unknown, expected: string) =>
  ConnectorError.config(connector, option, value, expected)

const error = (reason: ConnectorError.Reason) => ConnectorError.make(connector, reason)

/**
 * A channel name as a quoted identifier: `"` doubled, so quotes, spaces and unicode are fine; NUL and names over
 * 63 bytes (which the server would truncate) are rejected.
 *
 * @since 0.1.0
 * @category channels
 */
export const quoteChannel = (
  option: string,
  channel: unknown
): Result.Result<string, ConnectorError.ConnectorError> => {
  if (typeof channel !== "string" || channel === "" || channel.includes("\0")) {
    return Result.fail(config(option, channel, "a non-empty channel name without NUL"))
  }
  if (Buffer.byteLength(channel) > maxChannelBytes) {
    return Result.fail(config(option, channel, `a channel name of at most ${maxChannelBytes} bytes (UTF-8)`))
  }
  return Result.succeed(`"${channel.replaceAll('"', '""')}"`)
}

const checkConnection = (given: unknown): Effect.Effect<pg.ClientConfig, ConnectorError.ConnectorError> => {
  const value = Redacted.isRedacted(given) ? Redacted.value(given as Redacted.Redacted<string>) : given
  if (typeof value === "string") {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return Effect.fail(
        config("connection", ConnectorError.redactUrl(value), "a postgres:// URL or a pg client config")
      )
    }
    if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
      return Effect.fail(config("connection", ConnectorError.redactUrl(url), "a postgres:// or postgresql:// URL"))
    }
    return Effect.succeed({ connectionString: value })
  }
  if (typeof value === "object" && value !== null) return Effect.succeed(value as pg.ClientConfig)
  return Effect.fail(config("connection", value, "a postgres:// URL or a pg client config"))
}

const resolve = <A>(options: Options<A>): Effect.Effect<Resolved<A>, ConnectorError.ConnectorError> =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Effect.fail(config("options", options, "an options object"))
    }
    const common = yield* Connector.resolve<Notification<A>>(connector, options, {
      liveness: { interval: "30 seconds", timeout: "10 seconds" },
      // Dropping was measured to lose 60% of a 100k-notification burst with a consumer that keeps up (libuv
      // reads up to 2 MiB of a busy socket before the consumer's fiber runs). Pausing the socket is lossless; the
      // probe rests while we hold it paused, so a stalled consumer keeps its connection (README: the NOTIFY queue).
      overflow: { strategy: "suspend", bufferSize: 16_384, hardCap: (size) => size + burstAfterPause }
    })
    const connection = Effect.isEffect(options.connection)
      ? Effect.flatMap(options.connection, checkConnection)
      : Effect.succeed(yield* checkConnection(options.connection))
    if (!Array.isArray(options.channels)) {
      return yield* Effect.fail(config("channels", options.channels, "an array of channel names"))
    }
    for (const channel of options.channels) {
      const quoted = quoteChannel("channels", channel)
      if (Result.isFailure(quoted)) return yield* Effect.fail(quoted.failure)
    }
    const onDecodeError = yield* Connector.failOrSkip(connector, "onDecodeError", options.onDecodeError)
    return { common, connection, channels: [...new Set(options.channels)], schema: options.schema, onDecodeError }
  })

/** Server errors by SQLSTATE: bad credentials are `Auth`, an unknown database `Config`; neither is retried. */
const serverError = (cause: unknown): ConnectorError.ConnectorError => {
  const e = cause as { code?: string; message?: string }
  const message = e.code === undefined ? String(e.message ?? cause) : `${e.code}: ${e.message ?? ""}`
  switch (e.code) {
    case "28P01":
    case "28000":
      return error(new ConnectorError.Auth({ message, cause }))
    case "3D000":
    case "42501":
      return error(new ConnectorError.Config({ option: "connection", message, cause }))
    default:
      return error(new ConnectorError.Connect({ message, cause }))
  }
}

/** The client's socket, to cut a connection that will not close politely (black hole). */
const destroySocket = (client: pg.Client) => {
  ;(client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.()
}

interface State {
  readonly channels: Set<string>
  client: pg.Client | undefined
}

const driver = <A>(options: Resolved<A>, state: State): Driver.Driver<pg.Client, Notification<A>> => {
  const decode =
    options.schema === undefined ? undefined : Decode.decodeJson(connector, options.schema, options.onDecodeError)
  return {
    connector,
    probe: (client) =>
      Effect.tryPromise({
        try: () => client.query("SELECT 1"),
        catch: (cause) => error(new ConnectorError.Connect({ message: "liveness probe failed", cause }))
      }),
    connect: (session) =>
      Effect.gen(function* () {
        const settings = yield* options.connection
        // TCP keepalive: while a slow consumer holds the socket paused, no probe can be answered; keepalive still
        // finds a dead server.
        const client = new pg.Client({
          keepAlive: true,
          ...settings,
          application_name: settings.application_name ?? "streamemit"
        })
        let healthy = true
        // Every path out of this connection closes the client: politely (UNLISTEN *, Terminate) when the caller
        // ends a healthy connection, by destroying the socket when it failed (dead, stalled, killed) or when the
        // server does not answer within a second.
        yield* Effect.addFinalizer((exit) =>
          Effect.suspend(() => {
            if (state.client === client) state.client = undefined
            return Connector.release(
              exit,
              healthy ? () => client.query("UNLISTEN *").finally(() => client.end()) : undefined,
              () => destroySocket(client)
            )
          })
        )
        client.on("error", (cause) => {
          healthy = false
          session.fail(serverError(cause))
        })
        client.on("end", () => {
          healthy = false
          session.fail(
            error(new ConnectorError.Closed({ message: "the server closed the connection", retryable: true }))
          )
        })
        client.on("notification", (message) => {
          const text = message.payload ?? ""
          // pg-protocol's message carries its wire length: bytes counted without re-encoding the payload.
          const bytes = (message as { length?: number }).length ?? text.length
          if (decode === undefined) {
            // One callback per notification, many per socket read: `push` hands them over as one batch.
            session.push({ channel: message.channel, payload: text as A, processId: message.processId }, bytes)
            return
          }
          const result = decode(text, `channel "${message.channel}"`, session)
          if (Result.isSuccess(result)) {
            session.push({ channel: message.channel, payload: result.success, processId: message.processId }, bytes)
          } else session.received(bytes)
        })
        const socket = () =>
          (client as unknown as { connection?: { stream?: { pause: () => void; resume: () => void } } }).connection
            ?.stream
        session.flowControl({ pause: () => socket()?.pause(), resume: () => socket()?.resume() })
        yield* Effect.tryPromise({ try: () => client.connect(), catch: serverError }).pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              healthy = false
            })
          ),
          Effect.tapError(() =>
            Effect.sync(() => {
              healthy = false
            })
          )
        )
        // One round trip for every channel: the connection is announced once all of them listen. The text is built
        // inside the callback: a variable of this scope would stay referenced as long as the connection's release
        // (for 10,000 channels, 1.3 MB of string pieces).
        if (state.channels.size > 0) {
          yield* Effect.tryPromise({ try: () => client.query(listenAll(state.channels)), catch: serverError })
        }
        state.client = client
        return client
      })
  }
}

const onLive = (
  state: State,
  statement: (quoted: string) => string,
  channel: string
): Effect.Effect<void, ConnectorError.ConnectorError> => {
  const client = state.client
  if (client === undefined) return Effect.void
  return Effect.tryPromise({
    try: () => client.query(statement(Result.getOrThrow(quoteChannel("channel", channel)))),
    catch: (cause) =>
      error(new ConnectorError.Closed({ message: `${statement(channel)} failed`, cause, retryable: true }))
  }).pipe(Effect.asVoid)
}

/**
 * Connects in the current Scope and returns the handle.
 *
 * @since 0.1.0
 * @category constructors
 */
export function make<A>(
  options: Options<A> & { readonly schema: Schema.Decoder<A> }
): Effect.Effect<Handle<A>, ConnectorError.ConnectorError, Scope.Scope>
export function make(
  options: Options<string>
): Effect.Effect<Handle<string>, ConnectorError.ConnectorError, Scope.Scope>
export function make<A>(options: Options<A>): Effect.Effect<Handle<A>, ConnectorError.ConnectorError, Scope.Scope> {
  return Effect.gen(function* () {
    const resolved = yield* resolve(options)
    const state: State = { channels: new Set(resolved.channels), client: undefined }
    const handle = yield* Connector.make(driver(resolved, state), resolved.common)
    const checked = (channel: string) => Effect.fromResult(Result.map(quoteChannel("channel", channel), () => channel))
    return {
      ...handle,
      notify: (channel, payload = "") =>
        Effect.gen(function* () {
          yield* checked(channel)
          if (typeof payload !== "string") {
            return yield* Effect.fail(config("payload", payload, "a string"))
          }
          const bytes = Buffer.byteLength(payload)
          if (bytes > maxPayloadBytes) {
            return yield* Effect.fail(
              error(
                new ConnectorError.Protocol({
                  message: `NOTIFY payload of ${bytes} bytes: the server takes at most ${maxPayloadBytes}`,
                  retryable: false
                })
              )
            )
          }
          const client = yield* handle.connection
          yield* Effect.tryPromise({
            try: () => client.query("SELECT pg_notify($1, $2)", [channel, payload]),
            catch: (cause) => error(new ConnectorError.Closed({ message: "NOTIFY failed", cause, retryable: true }))
          })
        }),
      listen: (channel) =>
        Effect.flatMap(checked(channel), () => {
          if (state.channels.has(channel)) return Effect.void
          state.channels.add(channel)
          return onLive(state, (quoted) => `LISTEN ${quoted}`, channel)
        }),
      unlisten: (channel) =>
        Effect.flatMap(checked(channel), () => {
          if (!state.channels.delete(channel)) return Effect.void
          return onLive(state, (quoted) => `UNLISTEN ${quoted}`, channel)
        }),
      channels: Effect.sync(() => [...state.channels])
    } satisfies Handle<A>
  })
}

/** One `LISTEN` statement per channel, as one flat text. */
const listenAll = (channels: ReadonlySet<string>): string =>
  Array.from(channels, (channel) => `LISTEN ${Result.getOrThrow(quoteChannel("channels", channel))}`).join("; ")

/**
 * The notifications of `channels`: connects when run, re-LISTENs after every reconnect, closes when done.
 *
 * @since 0.1.0
 * @category constructors
 */
export function stream<A>(
  options: Options<A> & { readonly schema: Schema.Decoder<A> }
): Stream.Stream<Notification<A>, ConnectorError.ConnectorError>
export function stream(options: Options<string>): Stream.Stream<Notification<string>, ConnectorError.ConnectorError>
export function stream<A>(options: Options<A>): Stream.Stream<Notification<A>, ConnectorError.ConnectorError> {
  return Connector.stream(
    Effect.map(resolve(options), (resolved) => ({
      driver: driver(resolved, { channels: new Set(resolved.channels), client: undefined }),
      options: resolved.common
    }))
  )
}

/**
 * The listening connection as a service: one per app, shared by every fiber that listens or notifies.
 *
 * @since 0.2.0
 * @category services
 */
export class PgListen extends Context.Service<PgListen, Handle<string>>()("@streamemit/pg-listen/PgListen") {}

/**
 * A Layer that opens the listening connection for as long as the Layer lives.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options<string>): Layer.Layer<PgListen, ConnectorError.ConnectorError> =>
  Layer.effect(PgListen, make(options))

/**
 * What `layerConfig` reads from configuration: the connection string (`Config.Redacted` keeps it out of logs) and
 * the channels.
 *
 * @since 0.2.0
 * @category layers
 */
export interface ConfigOptions {
  readonly connection: string | Redacted.Redacted<string>
  readonly channels: ReadonlyArray<string>
}

/**
 * A Layer whose connection and channels come from configuration, e.g.
 * `layerConfig({ connection: Config.Redacted("DATABASE_URL"), channels: Config.succeed(["orders"]) })`; the other
 * options are given as values. A configuration error fails the Layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Wrap<ConfigOptions>,
  options: Omit<Options<string>, keyof ConfigOptions> = {}
): Layer.Layer<PgListen, ConnectorError.ConnectorError | Config.ConfigError> =>
  Layer.effect(
    PgListen,
    Effect.flatMap(Config.unwrap(config), (configured) => make({ ...options, ...configured }))
  )

/**
 * @since 0.2.0
 * @category checkpoints
 */
export interface CheckpointStoreOptions {
  /** A connection string (`postgres://…`), as is or `Redacted`, or a `pg` client config. */
  readonly connection: Connection
  /** The table (created if missing: `key text primary key, cursor text, saved_at bigint`). Default `streamemit_checkpoints`. */
  readonly table?: string | undefined
}

/**
 * A `Checkpoint.Store` in a Postgres table: a save is one upsert (atomic), a load one select. The client (a pool
 * of one) closes with the Layer. A row that cannot be read is a `Config` error naming the key and the table.
 *
 * @since 0.2.0
 * @category checkpoints
 */
export const checkpointStore = (
  options: CheckpointStoreOptions
): Layer.Layer<Checkpoint.Store, ConnectorError.ConnectorError> =>
  Layer.effect(
    Checkpoint.Store,
    Effect.gen(function* () {
      const settings = yield* checkConnection(options.connection)
      const table = options.table ?? "streamemit_checkpoints"
      if (typeof table !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(table)) {
        return yield* Effect.fail(config("table", table, "a table name (letters, digits, _; optionally schema.table)"))
      }
      const describe = `postgres table ${table}`
      const pool = yield* Effect.acquireRelease(
        Effect.sync(() => new pg.Pool({ ...settings, max: 1, application_name: "streamemit-checkpoints" })),
        (pool) => Effect.promise(() => pool.end().catch(() => {}))
      )
      pool.on("error", () => {})
      yield* Effect.tryPromise({
        try: () =>
          pool.query(
            `CREATE TABLE IF NOT EXISTS ${table} (key text PRIMARY KEY, cursor text NOT NULL, saved_at bigint NOT NULL)`
          ),
        catch: (cause) => Checkpoint.storeError(describe, "*", `cannot be created: ${(cause as Error).message}`, cause)
      })
      return Checkpoint.makeStore(describe, {
        read: async (key) => {
          const { rows } = await pool.query(`SELECT cursor, saved_at FROM ${table} WHERE key = $1`, [key])
          return rows.length === 0 ? undefined : { cursor: rows[0].cursor, savedAt: Number(rows[0].saved_at) }
        },
        write: (key, saved) =>
          pool.query(
            `INSERT INTO ${table} (key, cursor, saved_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET cursor = EXCLUDED.cursor, saved_at = EXCLUDED.saved_at`,
            [key, saved.cursor, saved.savedAt]
          )
      })
    })
  )

/**
 * The connector's options, a `checkpoint` whose `cursorOf` reads a notification's position (the outbox row's id in its
 * payload), and an `onResync` given the `cursor` to read on from.
 *
 * @since 0.2.0
 * @category checkpoints
 */
export type CheckpointedOptions<A> = Checkpoint.OutboxOptions<Omit<Options<A>, "binary">, Notification<A>>

/**
 * LISTEN resumed across restarts, for the outbox pattern: the producer writes a row and `NOTIFY`s its id in one
 * transaction; the consumer saves the id of the last notification whose work is done (`checkpoint.cursorOf`), and
 * on start — and after every reconnect — `onResync({ cursor })` reads the rows after it. NOTIFY alone keeps
 * nothing for a listener that is away; the rows do. Notifications are `Delivery` values: run the work with
 * `Delivery.process`; the cursor is saved every `checkpoint.every` or `checkpoint.interval` and on a clean close.
 *
 * @since 0.2.0
 * @category checkpoints
 */
export const checkpointed = <A = string>(
  options: CheckpointedOptions<A>
): Effect.Effect<
  Checkpoint.Resumed<Handle<A>, Notification<A>>,
  ConnectorError.ConnectorError,
  Scope.Scope | Checkpoint.Store
> =>
  Checkpoint.outbox(
    options,
    make as (options: Options<A>) => Effect.Effect<Handle<A>, ConnectorError.ConnectorError, Scope.Scope>
  )

/**
 * `checkpointed` as a stream of deliveries.
 *
 * @since 0.2.0
 * @category checkpoints
 */
export const resumable = <A = string>(
  options: CheckpointedOptions<A>
): Stream.Stream<Delivery.Delivery<Notification<A>>, ConnectorError.ConnectorError, Checkpoint.Store> =>
  Checkpoint.deliveries(checkpointed(options))
