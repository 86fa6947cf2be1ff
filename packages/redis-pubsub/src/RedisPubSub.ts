/**
 * Redis pub/sub as a scoped, bounded, self-healing stream: one `ioredis` subscriber connection per attempt (its own
 * reconnect and resubscribe turned off: core reconnects, then subscribes everything again, then `Gap`, then
 * `onResync`, then live), `PING` in subscribe mode as the liveness probe, and a lazily opened second connection
 * for `publish`.
 *
 * @since 0.1.0
 */
import { Connector, ConnectorError } from "@streamemit/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import type * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { Redis, type RedisOptions } from "ioredis"

const connector = "redis-pubsub"

/**
 * One message. `pattern` is set for messages matched by a pattern subscription; `sharded` for SSUBSCRIBE channels.
 *
 * @since 0.1.0
 * @category models
 */
export interface Message<A = string> {
  readonly channel: string
  readonly pattern?: string | undefined
  readonly payload: A
}

/**
 * A `redis://` / `rediss://` URL or ioredis options.
 *
 * @since 0.1.0
 * @category options
 */
export type Connection = string | RedisOptions

/**
 * @since 0.1.0
 * @category options
 */
export interface Options<A> extends Connector.CommonOptions<Message<A>> {
  /** Where to connect; an Effect is evaluated on every attempt. */
  readonly connection: Connector.PerAttempt<Connection>
  /** Channels to SUBSCRIBE (or SSUBSCRIBE with `sharded`). */
  readonly channels?: ReadonlyArray<string> | undefined
  /** Glob patterns to PSUBSCRIBE. */
  readonly patterns?: ReadonlyArray<string> | undefined
  /** Sharded pub/sub (Redis 7+): `channels` are subscribed with SSUBSCRIBE. Default `false`. */
  readonly sharded?: boolean | undefined
  /** Payloads as bytes (`Uint8Array`) instead of UTF-8 text. Default `false`. */
  readonly binary?: boolean | undefined
  /** Decode payloads as JSON with this Schema (not with `binary`). */
  readonly schema?: Schema.Decoder<A> | undefined
  /** A payload the Schema rejects fails the stream (`Decode`) or is skipped and counted. Default `"fail"`. */
  readonly onDecodeError?: Connector.OnDecodeError | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Handle<A = string> extends Connector.Handle<Redis, Message<A>> {
  /** PUBLISH (SPUBLISH with `sharded`) on a second connection, opened on first use; resolves with the receivers. */
  readonly publish: (
    channel: string,
    payload: string | Uint8Array
  ) => Effect.Effect<number, ConnectorError.ConnectorError>
  readonly subscribe: (channel: string) => Effect.Effect<void, ConnectorError.ConnectorError>
  readonly unsubscribe: (channel: string) => Effect.Effect<void, ConnectorError.ConnectorError>
  readonly psubscribe: (pattern: string) => Effect.Effect<void, ConnectorError.ConnectorError>
  readonly punsubscribe: (pattern: string) => Effect.Effect<void, ConnectorError.ConnectorError>
  /** What is subscribed now (and again after every reconnect). */
  readonly subscriptions: Effect.Effect<{
    readonly channels: ReadonlyArray<string>
    readonly patterns: ReadonlyArray<string>
  }>
}

interface Resolved<A> {
  readonly common: Connector.Resolved<Message<A>>
  readonly connection: Effect.Effect<RedisOptions, ConnectorError.ConnectorError>
  readonly channels: ReadonlyArray<string>
  readonly patterns: ReadonlyArray<string>
  readonly sharded: boolean
  readonly binary: boolean
  readonly schema: Schema.Decoder<A> | undefined
  readonly onDecodeError: Connector.OnDecodeError
}

const config = (option: string, value: unknown, expected: string) =>
  ConnectorError.config(connector, option, value, expected)

const error = (reason: ConnectorError.Reason) => ConnectorError.make(connector, reason)

/** Our settings on top of the caller's: core owns reconnect and resubscribe, and nothing is queued while down. */
const ours = {
  lazyConnect: true,
  retryStrategy: () => null,
  autoResubscribe: false,
  autoResendUnfulfilledCommands: false,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0
} satisfies RedisOptions

const checkConnection = (value: unknown): Effect.Effect<RedisOptions, ConnectorError.ConnectorError> => {
  if (typeof value === "string") {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return Effect.fail(config("connection", ConnectorError.redactUrl(value), "a redis:// URL or ioredis options"))
    }
    if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
      return Effect.fail(config("connection", ConnectorError.redactUrl(url), "a redis:// or rediss:// URL"))
    }
    const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0
    if (!Number.isInteger(db) || db < 0) {
      return Effect.fail(config("connection", ConnectorError.redactUrl(url), "a database number in the URL path"))
    }
    return Effect.succeed({
      host: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port === "" ? 6379 : Number(url.port),
      ...(url.username === "" ? {} : { username: decodeURIComponent(url.username) }),
      ...(url.password === "" ? {} : { password: decodeURIComponent(url.password) }),
      db,
      ...(url.protocol === "rediss:" ? { tls: { servername: url.hostname } } : {})
    })
  }
  if (typeof value === "object" && value !== null) return Effect.succeed(value as RedisOptions)
  return Effect.fail(config("connection", value, "a redis:// URL or ioredis options"))
}

const checkNames = (
  option: string,
  value: unknown
): Effect.Effect<ReadonlyArray<string>, ConnectorError.ConnectorError> => {
  if (value === undefined) return Effect.succeed([])
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v !== "")) {
    return Effect.fail(config(option, value, "an array of non-empty strings"))
  }
  return Effect.succeed([...new Set(value as ReadonlyArray<string>)])
}

const resolve = <A>(options: Options<A>): Effect.Effect<Resolved<A>, ConnectorError.ConnectorError> =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Effect.fail(config("options", options, "an options object"))
    }
    const common = yield* Connector.resolve<Message<A>>(connector, options, {
      liveness: { interval: "30 seconds", timeout: "10 seconds" },
      // A paused subscriber is cut off by the server (client-output-buffer-limit pubsub, 32 MB by default):
      // a large bounded buffer that drops, and counts, is the honest default.
      overflow: { strategy: "dropping", bufferSize: 65_536 }
    })
    const connection = Effect.isEffect(options.connection)
      ? Effect.flatMap(options.connection, checkConnection)
      : Effect.succeed(yield* checkConnection(options.connection))
    const channels = yield* checkNames("channels", options.channels)
    const patterns = yield* checkNames("patterns", options.patterns)
    const sharded = options.sharded ?? false
    if (typeof sharded !== "boolean") return yield* Effect.fail(config("sharded", sharded, "a boolean"))
    if (sharded && patterns.length > 0) {
      return yield* Effect.fail(config("patterns", patterns, "no patterns with sharded pub/sub (Redis has none)"))
    }
    const binary = options.binary ?? false
    if (typeof binary !== "boolean") return yield* Effect.fail(config("binary", binary, "a boolean"))
    if (binary && options.schema !== undefined) {
      return yield* Effect.fail(config("schema", "binary", "text payloads (binary: false) to decode JSON"))
    }
    const onDecodeError = options.onDecodeError ?? "fail"
    if (onDecodeError !== "fail" && onDecodeError !== "skip") {
      return yield* Effect.fail(config("onDecodeError", onDecodeError, '"fail" or "skip"'))
    }
    return { common, connection, channels, patterns, sharded, binary, schema: options.schema, onDecodeError }
  })

/** Server replies: bad credentials are `Auth` (not retried); anything else is a transport failure. */
const redisError = (cause: unknown): ConnectorError.ConnectorError => {
  const e = cause as { code?: string; message?: string }
  const message = e.code === undefined ? String(e.message ?? cause) : `${e.code}: ${e.message ?? ""}`
  if (/^(WRONGPASS|NOAUTH|NOPERM)/.test(e.message ?? "")) return error(new ConnectorError.Auth({ message, cause }))
  return error(new ConnectorError.Connect({ message, cause }))
}

interface State {
  readonly channels: Set<string>
  readonly patterns: Set<string>
  client: Redis | undefined
}

const subscribeAll = (client: Redis, state: State, sharded: boolean) =>
  Promise.all([
    state.channels.size === 0
      ? undefined
      : sharded
        ? client.ssubscribe(...state.channels)
        : client.subscribe(...state.channels),
    state.patterns.size === 0 ? undefined : client.psubscribe(...state.patterns)
  ])

const driver = <A>(options: Resolved<A>, state: State): Connector.Driver<Redis, Message<A>> => {
  const decode =
    options.schema === undefined ? undefined : Connector.decodeJson(connector, options.schema, options.onDecodeError)
  const deliver = (
    session: Connector.Session<Message<A>>,
    channel: string,
    pattern: string | undefined,
    payload: Buffer
  ) => {
    // One callback per message, many per socket read: `push` hands them over as one batch.
    if (options.binary) {
      session.push(
        { channel, pattern, payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength) as A },
        payload.byteLength
      )
      return
    }
    const text = payload.toString("utf8")
    if (decode === undefined) {
      session.push({ channel, pattern, payload: text as A }, payload.byteLength)
      return
    }
    session.received(payload.byteLength)
    const result = decode(text, `channel "${channel}"`, session)
    if (Result.isSuccess(result)) session.emit({ channel, pattern, payload: result.success })
  }
  return {
    connector,
    probe: (client) =>
      Effect.tryPromise({
        try: () => client.ping(),
        catch: (cause) => error(new ConnectorError.Connect({ message: "PING failed", cause }))
      }),
    connect: (session) =>
      Effect.gen(function* () {
        const settings = yield* options.connection
        const client = new Redis({ ...settings, ...ours })
        let healthy = true
        // The first error reported wins: a rejected connect() only says "Connection is closed" after the reply
        // that explains it (WRONGPASS) came as an "error" event.
        let firstError: ConnectorError.ConnectorError | undefined
        // QUIT when the caller ends a healthy connection (one second at most); otherwise cut the socket.
        yield* Effect.addFinalizer((exit) =>
          Effect.promise(async () => {
            if (state.client === client) state.client = undefined
            if (healthy && (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause))) {
              const timer = new Promise((resolve) => setTimeout(resolve, 1000).unref())
              await Promise.race([client.quit().catch(() => {}), timer])
            }
            client.disconnect()
          })
        )
        client.on("error", (cause) => {
          healthy = false
          firstError ??= redisError(cause)
          session.fail(firstError)
        })
        client.on("end", () => {
          healthy = false
          session.fail(error(new ConnectorError.Closed({ message: "the connection closed", retryable: true })))
        })
        client.on("messageBuffer", (channel: Buffer, payload: Buffer) =>
          deliver(session, channel.toString("utf8"), undefined, payload)
        )
        client.on("smessageBuffer", (channel: Buffer, payload: Buffer) =>
          deliver(session, channel.toString("utf8"), undefined, payload)
        )
        client.on("pmessageBuffer", (pattern: Buffer | string, channel: Buffer, payload: Buffer) =>
          deliver(session, channel.toString("utf8"), pattern.toString(), payload)
        )
        session.flowControl({ pause: () => client.stream?.pause(), resume: () => client.stream?.resume() })
        const failed = () =>
          Effect.sync(() => {
            healthy = false
          })
        const connectError = (cause: unknown) => firstError ?? redisError(cause)
        yield* Effect.tryPromise({ try: () => client.connect(), catch: connectError }).pipe(
          Effect.onInterrupt(failed),
          Effect.tapError(failed)
        )
        yield* Effect.tryPromise({ try: () => subscribeAll(client, state, options.sharded), catch: connectError })
        state.client = client
        return client
      })
  }
}

const live = (
  state: State,
  run: (client: Redis) => Promise<unknown>
): Effect.Effect<void, ConnectorError.ConnectorError> => {
  const client = state.client
  if (client === undefined) return Effect.void
  return Effect.tryPromise({
    try: () => run(client),
    catch: (cause) =>
      error(new ConnectorError.Closed({ message: String((cause as Error).message), cause, retryable: true }))
  }).pipe(Effect.asVoid)
}

/**
 * Connects in the current Scope and returns the handle.
 *
 * @since 0.1.0
 * @category constructors
 */
export function make(
  options: Options<Uint8Array> & { readonly binary: true }
): Effect.Effect<Handle<Uint8Array>, ConnectorError.ConnectorError, Scope.Scope>
export function make<A>(
  options: Options<A> & { readonly schema: Schema.Decoder<A> }
): Effect.Effect<Handle<A>, ConnectorError.ConnectorError, Scope.Scope>
export function make(
  options: Options<string>
): Effect.Effect<Handle<string>, ConnectorError.ConnectorError, Scope.Scope>
export function make<A>(options: Options<A>): Effect.Effect<Handle<A>, ConnectorError.ConnectorError, Scope.Scope> {
  return Effect.gen(function* () {
    const resolved = yield* resolve(options)
    const state: State = {
      channels: new Set(resolved.channels),
      patterns: new Set(resolved.patterns),
      client: undefined
    }
    const handle = yield* Connector.make(driver(resolved, state), resolved.common)
    const scope = yield* Effect.scope
    // The publisher: a plain connection, opened on first use, closed with the handle.
    let publisher: Promise<Redis> | undefined
    const openPublisher = Effect.gen(function* () {
      if (publisher === undefined) {
        const settings = yield* resolved.connection
        const client = new Redis({ ...settings, ...ours })
        client.on("error", () => {})
        publisher = client.connect().then(
          () => client,
          (cause) => {
            publisher = undefined
            client.disconnect()
            throw cause
          }
        )
        yield* Scope.addFinalizer(
          scope,
          Effect.sync(() => client.disconnect())
        )
      }
      return yield* Effect.tryPromise({ try: () => publisher!, catch: redisError })
    })
    const name = (option: string, value: string) =>
      typeof value === "string" && value !== "" ? Effect.void : Effect.fail(config(option, value, "a non-empty string"))
    return {
      ...handle,
      publish: (channel, payload) =>
        Effect.gen(function* () {
          yield* name("channel", channel)
          if (typeof payload !== "string" && !(payload instanceof Uint8Array)) {
            return yield* Effect.fail(config("payload", payload, "a string or Uint8Array"))
          }
          const client = yield* openPublisher
          const bytes =
            typeof payload === "string" ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
          return yield* Effect.tryPromise({
            try: (): Promise<number> =>
              resolved.sharded ? (client.spublish(channel, bytes) as Promise<number>) : client.publish(channel, bytes),
            catch: redisError
          })
        }),
      subscribe: (channel) =>
        Effect.flatMap(name("channel", channel), () => {
          state.channels.add(channel)
          return live(state, (c) => (resolved.sharded ? c.ssubscribe(channel) : c.subscribe(channel)))
        }),
      unsubscribe: (channel) =>
        Effect.flatMap(name("channel", channel), () => {
          if (!state.channels.delete(channel)) return Effect.void
          return live(state, (c) => (resolved.sharded ? c.sunsubscribe(channel) : c.unsubscribe(channel)))
        }),
      psubscribe: (pattern) =>
        Effect.flatMap(name("pattern", pattern), () => {
          if (resolved.sharded) return Effect.fail(config("pattern", pattern, "no patterns with sharded pub/sub"))
          state.patterns.add(pattern)
          return live(state, (c) => c.psubscribe(pattern))
        }),
      punsubscribe: (pattern) =>
        Effect.flatMap(name("pattern", pattern), () => {
          if (!state.patterns.delete(pattern)) return Effect.void
          return live(state, (c) => c.punsubscribe(pattern))
        }),
      subscriptions: Effect.sync(() => ({ channels: [...state.channels], patterns: [...state.patterns] }))
    } satisfies Handle<A>
  })
}

/**
 * The messages of `channels` and `patterns`: connects when run, subscribes again after every reconnect, closes
 * when done.
 *
 * @since 0.1.0
 * @category constructors
 */
export function stream(
  options: Options<Uint8Array> & { readonly binary: true }
): Stream.Stream<Message<Uint8Array>, ConnectorError.ConnectorError>
export function stream<A>(
  options: Options<A> & { readonly schema: Schema.Decoder<A> }
): Stream.Stream<Message<A>, ConnectorError.ConnectorError>
export function stream(options: Options<string>): Stream.Stream<Message<string>, ConnectorError.ConnectorError>
export function stream<A>(options: Options<A>): Stream.Stream<Message<A>, ConnectorError.ConnectorError> {
  return Connector.stream(
    Effect.map(resolve(options), (resolved) => ({
      driver: driver(resolved, {
        channels: new Set(resolved.channels),
        patterns: new Set(resolved.patterns),
        client: undefined
      }),
      options: resolved.common
    }))
  )
}
