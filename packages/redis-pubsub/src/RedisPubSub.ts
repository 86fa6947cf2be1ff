/**
 * Redis pub/sub as a scoped, bounded, self-healing stream: `ioredis` subscriber connections per attempt (their own
 * reconnect and resubscribe turned off: core reconnects, then subscribes everything again, then `Gap`, then
 * `onResync`, then live), `PING` in subscribe mode as the liveness probe, and a lazily opened second connection
 * for `publish`. On a Redis Cluster, every attempt reads the topology and SSUBSCRIBEs each sharded channel on the
 * master that serves its slot; a slot that moves (resharding, failover) is a reconnect like any other.
 *
 * Over 500 lines on purpose: one driver serves a standalone server and a cluster (seeds, topology, routing each
 * sharded channel to its master, live (un)subscribe on either) through the same connection loop, and splitting it
 * would scatter one connection's story; the pure parts (slot hashing, topology) are in `internal/`.
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
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { Cluster, Redis, type RedisOptions } from "ioredis"
import { slotOf } from "./internal/slot.ts"
import { address, readTopology } from "./internal/topology.ts"

const connector = "redis-pubsub"

/**
 * One message. `pattern` is set for messages matched by a pattern subscription.
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
 * A Redis Cluster: seed nodes as `redis://` URLs or ioredis options. The topology is read from the first seed that
 * answers (then from any node seen before); every node is dialled with that seed's settings (user, password, TLS,
 * connection name) at the address the cluster reports.
 *
 * @since 0.1.0
 * @category options
 */
export interface ClusterConnection {
  readonly cluster: ReadonlyArray<string | Redacted.Redacted<string> | RedisOptions>
}

/**
 * A `redis://` / `rediss://` URL (as is, or `Redacted`: kept out of logs and errors), ioredis options, or a
 * cluster's seed nodes.
 *
 * @since 0.1.0
 * @category options
 */
export type Connection = string | Redacted.Redacted<string> | RedisOptions | ClusterConnection

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
  readonly onDecodeError?: Decode.OnDecodeError | undefined
}

/**
 * The subscriber connections of the live attempt: one, or with `sharded` on a cluster, one per master that serves
 * a subscribed channel's slot (the array grows as channels on other masters are subscribed).
 *
 * @since 0.1.0
 * @category models
 */
export type Subscribers = ReadonlyArray<Redis>

/**
 * @since 0.1.0
 * @category models
 */
export interface Handle<A = string> extends Connector.Handle<Subscribers, Message<A>> {
  /**
   * PUBLISH (SPUBLISH with `sharded`) on a second connection — an ioredis `Cluster` on a cluster — opened on first
   * use and again after it broke; resolves with the receivers.
   */
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

/** Where one attempt connects. */
type Target =
  | { readonly _tag: "Standalone"; readonly settings: RedisOptions }
  | { readonly _tag: "Cluster"; readonly seeds: ReadonlyArray<RedisOptions> }

interface Resolved<A> {
  readonly common: Connector.Resolved<Message<A>>
  readonly target: Effect.Effect<Target, ConnectorError.ConnectorError>
  /** Fresh for every `resolve`: the handle's subscription state takes them over. */
  readonly channels: Set<string>
  readonly patterns: Set<string>
  readonly sharded: boolean
  readonly binary: boolean
  readonly schema: Schema.Decoder<A> | undefined
  readonly onDecodeError: Decode.OnDecodeError
}

const config = (option: string, value: unknown, expected: string) =>
  ConnectorError.config(connector, option, value, expected)

const error = (reason: ConnectorError.Reason) => ConnectorError.make(connector, reason)

const closed = (message: string, cause?: unknown) =>
  error(new ConnectorError.Closed({ message, retryable: true, ...(cause === undefined ? {} : { cause }) }))

/** Our settings on top of the caller's: core owns reconnect and resubscribe, and nothing is queued while down. */
const ours = {
  lazyConnect: true,
  retryStrategy: () => null,
  autoResubscribe: false,
  autoResendUnfulfilledCommands: false,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0
} satisfies RedisOptions

const parseUrl = (value: string): Effect.Effect<RedisOptions, ConnectorError.ConnectorError> => {
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

const checkNode = (given: unknown): Effect.Effect<RedisOptions, ConnectorError.ConnectorError> => {
  const value = Redacted.isRedacted(given) ? Redacted.value(given as Redacted.Redacted<string>) : given
  if (typeof value === "string") return parseUrl(value)
  if (typeof value === "object" && value !== null) return Effect.succeed(value as RedisOptions)
  return Effect.fail(config("connection", value, "a redis:// URL or ioredis options"))
}

const checkConnection = (value: unknown): Effect.Effect<Target, ConnectorError.ConnectorError> => {
  if (typeof value === "object" && value !== null && "cluster" in value) {
    const seeds = (value as ClusterConnection).cluster
    if (!Array.isArray(seeds) || seeds.length === 0) {
      return Effect.fail(config("connection.cluster", seeds, "a non-empty array of seed nodes"))
    }
    return Effect.flatMap(Effect.forEach(seeds, checkNode), (settings) =>
      settings.some((s) => (s.db ?? 0) !== 0)
        ? Effect.fail(config("connection.cluster", "db", "database 0: a Redis Cluster has no other"))
        : Effect.succeed<Target>({ _tag: "Cluster", seeds: settings })
    )
  }
  return Effect.map(checkNode(value), (settings): Target => ({ _tag: "Standalone", settings }))
}

/** The names, without repeats, checked and collected in one pass (100,000 channels are a use case). */
const checkNames = (option: string, value: unknown): Effect.Effect<Set<string>, ConnectorError.ConnectorError> => {
  const names = new Set<string>()
  if (value === undefined) return Effect.succeed(names)
  if (!Array.isArray(value)) return Effect.fail(config(option, value, "an array of non-empty strings"))
  for (const name of value) {
    if (typeof name !== "string" || name === "") {
      return Effect.fail(config(option, value, "an array of non-empty strings"))
    }
    names.add(name)
  }
  return Effect.succeed(names)
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
    const target = Effect.isEffect(options.connection)
      ? Effect.flatMap(options.connection, checkConnection)
      : Effect.succeed(yield* checkConnection(options.connection))
    const channels = yield* checkNames("channels", options.channels)
    const patterns = yield* checkNames("patterns", options.patterns)
    const sharded = options.sharded ?? false
    if (typeof sharded !== "boolean") return yield* Effect.fail(config("sharded", sharded, "a boolean"))
    if (sharded && patterns.size > 0) {
      return yield* Effect.fail(config("patterns", [...patterns], "no patterns with sharded pub/sub (Redis has none)"))
    }
    const binary = options.binary ?? false
    if (typeof binary !== "boolean") return yield* Effect.fail(config("binary", binary, "a boolean"))
    if (binary && options.schema !== undefined) {
      return yield* Effect.fail(config("schema", "binary", "text payloads (binary: false) to decode JSON"))
    }
    const onDecodeError = yield* Connector.failOrSkip(connector, "onDecodeError", options.onDecodeError)
    return { common, target, channels, patterns, sharded, binary, schema: options.schema, onDecodeError }
  })

/** Server replies: bad credentials are `Auth` (not retried); anything else is a transport failure. */
const redisError = (cause: unknown): ConnectorError.ConnectorError => {
  const e = cause as { code?: string; message?: string }
  const message = e.code === undefined ? String(e.message ?? cause) : `${e.code}: ${e.message ?? ""}`
  if (/^(WRONGPASS|NOAUTH|NOPERM)/.test(e.message ?? "")) return error(new ConnectorError.Auth({ message, cause }))
  // When a shard channel's slot leaves a node (resharding, failover), the server unsubscribes its subscribers with
  // a SUNSUBSCRIBE nobody asked for; ioredis reports that reply as a command queue error.
  if (/Last reply: sunsubscribe/.test(e.message ?? "")) {
    return closed("the server dropped our shard channels: their slot moved (resharding or failover)", cause)
  }
  return error(new ConnectorError.Connect({ message, cause }))
}

interface State {
  readonly channels: Set<string>
  readonly patterns: Set<string>
  /** The live attempt, for the handle's (un)subscribe. */
  attempt: Attempt | undefined
  /** Nodes of the last topology read, tried after the seeds. */
  known: ReadonlyArray<RedisOptions>
}

/** One connection attempt: its subscribers and how a channel finds its own. */
interface Attempt {
  readonly clients: Array<Redis>
  /** The subscriber that SUBSCRIBEs (SSUBSCRIBEs) `channel`; on a cluster it may dial the slot's master first. */
  readonly route: (channel: string) => Promise<Redis>
  /** Rejects with the error that broke the attempt, so that a reply that never comes does not hang a caller. */
  readonly broken: Promise<never>
}

const driver = <A>(options: Resolved<A>, state: State): Driver.Driver<Subscribers, Message<A>> => {
  const decode =
    options.schema === undefined ? undefined : Decode.decodeJson(connector, options.schema, options.onDecodeError)
  const deliver = (
    session: Driver.Session<Message<A>>,
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
    const result = decode(text, `channel "${channel}"`, session)
    if (Result.isSuccess(result)) session.push({ channel, pattern, payload: result.success }, payload.byteLength)
    else session.received(payload.byteLength)
  }

  const connect = (session: Driver.Session<Message<A>>) =>
    Effect.gen(function* () {
      const target = yield* options.target
      // Every connection dialled (closed with the attempt) and, among them, the subscribers (probed, paused).
      const clients: Array<Redis> = []
      const subscribers: Array<Redis> = []
      let paused = false
      // The first error reported wins: a rejected connect() only says "Connection is closed" after the reply
      // that explains it (WRONGPASS) came as an "error" event.
      let firstError: ConnectorError.ConnectorError | undefined
      let breakAttempt: (error: ConnectorError.ConnectorError) => void = () => {}
      const broken = new Promise<never>((_, reject) => {
        breakAttempt = reject
      })
      broken.catch(() => {})
      const report = (e: ConnectorError.ConnectorError) => {
        firstError ??= e
        session.fail(firstError)
        breakAttempt(firstError)
      }
      const moved = (client: Redis) =>
        target._tag === "Cluster"
          ? closed(`SSUBSCRIBE on ${address(client.options)} was redirected (MOVED): the slot moved`)
          : config(
              "connection",
              address(client.options),
              "a { cluster: [...] } connection: the server is a Redis Cluster node (SSUBSCRIBE got MOVED)"
            )

      // Every connection of the attempt is closed with it: QUIT when the caller ends a healthy one (one second at
      // most), otherwise the socket is cut.
      yield* Effect.addFinalizer((exit) =>
        Effect.suspend(() => {
          if (state.attempt?.clients === subscribers) state.attempt = undefined
          return Effect.forEach(
            clients,
            (client) =>
              Connector.release(exit, client.status === "ready" ? () => client.quit() : undefined, () =>
                client.disconnect()
              ),
            { concurrency: "unbounded", discard: true }
          )
        })
      )

      /** Feeds the session from `client` and reports its failures as the attempt's. */
      const watch = (client: Redis) => {
        subscribers.push(client)
        client.on("error", (cause) => report(redisError(cause)))
        client.on("end", () => report(closed(`the connection to ${address(client.options)} closed`)))
        client.on("moved", () => report(moved(client)))
        client.on("messageBuffer", (channel: Buffer, payload: Buffer) =>
          deliver(session, channel.toString("utf8"), undefined, payload)
        )
        client.on("smessageBuffer", (channel: Buffer, payload: Buffer) =>
          deliver(session, channel.toString("utf8"), undefined, payload)
        )
        client.on("pmessageBuffer", (pattern: Buffer | string, channel: Buffer, payload: Buffer) =>
          deliver(session, channel.toString("utf8"), pattern.toString(), payload)
        )
        if (paused) client.stream?.pause()
        // A seed that closed between the topology read and now said so before anyone listened.
        if (client.status === "end" || client.status === "close") {
          report(closed(`the connection to ${address(client.options)} closed`))
        }
      }

      /** Dials one connection of this attempt; `watched` ones report every failure to the session from the start. */
      const open = (settings: RedisOptions, watched: boolean): Promise<Redis> => {
        const client = new Redis({ ...settings, ...ours })
        clients.push(client)
        let early: unknown
        client.on("error", (cause) => {
          early ??= cause
        })
        if (watched) watch(client)
        return client.connect().then(
          () => client,
          (cause) => {
            throw early ?? cause
          }
        )
      }
      const attempt = <T>(run: () => Promise<T>) =>
        Effect.tryPromise({
          try: () => Promise.race([run(), broken]),
          catch: (cause) => firstError ?? redisError(cause)
        })

      session.flowControl({
        pause: () => {
          paused = true
          for (const client of subscribers) client.stream?.pause()
        },
        resume: () => {
          paused = false
          for (const client of subscribers) client.stream?.resume()
        }
      })

      let route: Attempt["route"]
      if (target._tag === "Standalone") {
        const client = yield* attempt(() => open(target.settings, true))
        route = () => Promise.resolve(client)
      } else {
        const { seed, topology } = yield* readFromSeeds(open, [...target.seeds, ...state.known])
        state.known = topology.nodes
        if (options.sharded) {
          // The seed only told us the topology: each channel goes to the master serving its slot.
          seed.client.disconnect()
          const byNode = new Map<string, Promise<Redis>>()
          route = (channel) => {
            const slot = slotOf(channel)
            const node = topology.slots[slot]
            if (node === undefined) {
              return Promise.reject(closed(`no master serves slot ${slot} (channel "${channel}") yet`))
            }
            let client = byNode.get(node)
            if (client === undefined) {
              const [host, port] = [node.slice(0, node.lastIndexOf(":")), Number(node.slice(node.lastIndexOf(":") + 1))]
              client = open({ ...seed.settings, host, port }, true)
              byNode.set(node, client)
            }
            return client
          }
        } else {
          // A PUBLISH reaches every node of a cluster: one subscriber anywhere hears all channels and patterns.
          watch(seed.client)
          route = () => Promise.resolve(seed.client)
        }
      }
      state.attempt = { clients: subscribers, route, broken }

      yield* attempt(() => subscribeAll(route, state, options.sharded))
      if (firstError !== undefined) return yield* Effect.fail(firstError)
      return subscribers as Subscribers
    })

  return {
    connector,
    probe: (clients) =>
      Effect.tryPromise({
        try: () => Promise.all(clients.map((client) => client.ping())),
        catch: (cause) => error(new ConnectorError.Connect({ message: "PING failed", cause }))
      }),
    connect
  }
}

/**
 * Reads the topology from the first node that answers CLUSTER SLOTS. A node that is down is skipped; bad
 * credentials and a server without cluster support fail at once.
 */
const readFromSeeds = (
  open: (settings: RedisOptions, watched: boolean) => Promise<Redis>,
  candidates: ReadonlyArray<RedisOptions>
) =>
  Effect.tryPromise({
    try: async () => {
      const tried = new Set<string>()
      let last: unknown
      for (const candidate of candidates) {
        // Nodes seen before are dialled with the first seed's settings.
        const settings = { ...candidates[0], ...candidate }
        if (tried.has(address(settings))) continue
        tried.add(address(settings))
        try {
          const client = await open(settings, false)
          const topology = await readTopology(client, settings)
          return { seed: { client, settings }, topology }
        } catch (cause) {
          const message = String((cause as Error)?.message ?? cause)
          if (/cluster support disabled/i.test(message)) {
            throw config("connection.cluster", address(settings), "Redis Cluster nodes (cluster support is disabled)")
          }
          if (redisError(cause).reason._tag === "Auth") throw cause
          last = cause
        }
      }
      throw last
    },
    catch: (cause) => (ConnectorError.isConnectorError(cause) ? cause : redisError(cause))
  })

const subscribeAll = async (route: Attempt["route"], state: State, sharded: boolean) => {
  if (sharded) {
    // SSUBSCRIBE takes channels of one slot only: one call per channel, all in flight at once.
    await Promise.all([...state.channels].map(async (channel) => (await route(channel)).ssubscribe(channel)))
    return
  }
  const client = await route("")
  await Promise.all([
    state.channels.size === 0 ? undefined : client.subscribe(...state.channels),
    state.patterns.size === 0 ? undefined : client.psubscribe(...state.patterns)
  ])
}

/** A live (un)subscribe: now if connected (and always again after a reconnect). */
const live = (
  state: State,
  channel: string,
  run: (client: Redis) => Promise<unknown>
): Effect.Effect<void, ConnectorError.ConnectorError> => {
  const attempt = state.attempt
  if (attempt === undefined) return Effect.void
  return Effect.tryPromise({
    try: () => Promise.race([attempt.route(channel).then(run), attempt.broken]),
    catch: (cause) =>
      ConnectorError.isConnectorError(cause) ? cause : closed(String((cause as Error)?.message ?? cause), cause)
  }).pipe(Effect.asVoid)
}

type Publisher = Redis | Cluster

/** Connects `client`; one that could not connect is closed. Its errors surface through the commands. */
const connected = <C extends Publisher>(client: C): Promise<C> => {
  client.on("error", () => {})
  return client.connect().then(
    () => client,
    (cause) => {
      client.disconnect()
      throw cause
    }
  )
}

const openPublisher = (target: Target): Promise<Publisher> => {
  if (target._tag === "Standalone") return connected(new Redis({ ...target.settings, ...ours }))
  const [first] = target.seeds
  const { host: _host, port: _port, ...shared } = first!
  // ioredis' Cluster routes each SPUBLISH to its slot's master and follows MOVED itself.
  return connected(
    new Cluster(
      target.seeds.map((s) => ({ host: s.host ?? "127.0.0.1", port: s.port ?? 6379 })),
      {
        redisOptions: shared,
        lazyConnect: true,
        enableOfflineQueue: false,
        clusterRetryStrategy: () => null
      }
    )
  )
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
      channels: resolved.channels,
      patterns: resolved.patterns,
      attempt: undefined,
      known: []
    }
    const handle = yield* Connector.make(driver(resolved, state), resolved.common)
    // The publisher: opened on first use, opened again once it broke, closed with the handle.
    let publisher: Promise<Publisher> | undefined
    let closedWithHandle = false
    yield* Scope.addFinalizer(
      yield* Effect.scope,
      Effect.promise(async () => {
        closedWithHandle = true
        const current = await publisher?.catch(() => undefined)
        current?.disconnect()
      })
    )
    const usablePublisher = Effect.gen(function* () {
      const current =
        publisher === undefined ? undefined : yield* Effect.promise(() => publisher!.catch(() => undefined))
      if (current !== undefined && current.status === "ready") return current
      current?.disconnect()
      const target = yield* resolved.target
      if (closedWithHandle) return yield* Effect.fail(closed("the handle is closed"))
      const next = openPublisher(target)
      publisher = next
      return yield* Effect.tryPromise({ try: () => next, catch: redisError })
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
          const client = yield* usablePublisher
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
          return live(state, channel, (c) => (resolved.sharded ? c.ssubscribe(channel) : c.subscribe(channel)))
        }),
      unsubscribe: (channel) =>
        Effect.flatMap(name("channel", channel), () => {
          if (!state.channels.delete(channel)) return Effect.void
          return live(state, channel, (c) => (resolved.sharded ? c.sunsubscribe(channel) : c.unsubscribe(channel)))
        }),
      psubscribe: (pattern) =>
        Effect.flatMap(name("pattern", pattern), () => {
          if (resolved.sharded) return Effect.fail(config("pattern", pattern, "no patterns with sharded pub/sub"))
          state.patterns.add(pattern)
          return live(state, "", (c) => c.psubscribe(pattern))
        }),
      punsubscribe: (pattern) =>
        Effect.flatMap(name("pattern", pattern), () => {
          if (!state.patterns.delete(pattern)) return Effect.void
          return live(state, "", (c) => c.punsubscribe(pattern))
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
        channels: resolved.channels,
        patterns: resolved.patterns,
        attempt: undefined,
        known: []
      }),
      options: resolved.common
    }))
  )
}

/**
 * The subscriber as a service: one per app, shared by every fiber that reads, publishes or (un)subscribes.
 *
 * @since 0.2.0
 * @category services
 */
export class RedisPubSub extends Context.Service<RedisPubSub, Handle<string>>()(
  "@streamemit/redis-pubsub/RedisPubSub"
) {}

/**
 * A Layer that opens the subscriber for as long as the Layer lives.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options<string>): Layer.Layer<RedisPubSub, ConnectorError.ConnectorError> =>
  Layer.effect(RedisPubSub, make(options))

/**
 * What `layerConfig` reads from configuration: the connection URL (`Config.Redacted` keeps it out of logs), the
 * channels and the patterns.
 *
 * @since 0.2.0
 * @category layers
 */
export interface ConfigOptions {
  readonly connection: string | Redacted.Redacted<string>
  readonly channels?: ReadonlyArray<string> | undefined
  readonly patterns?: ReadonlyArray<string> | undefined
}

/**
 * A Layer whose connection and subscriptions come from configuration, e.g.
 * `layerConfig({ connection: Config.Redacted("REDIS_URL"), channels: Config.succeed(["orders"]) })`; the other
 * options are given as values. A configuration error fails the Layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Wrap<ConfigOptions>,
  options: Omit<Options<string>, keyof ConfigOptions> = {}
): Layer.Layer<RedisPubSub, ConnectorError.ConnectorError | Config.ConfigError> =>
  Layer.effect(
    RedisPubSub,
    Effect.flatMap(Config.unwrap(config), (configured) => make({ ...options, ...configured }))
  )

/**
 * The connector's options, a `checkpoint` whose `cursorOf` reads a message's position (the outbox row's id in its
 * payload), and an `onResync` given the `cursor` to read on from.
 *
 * @since 0.2.0
 * @category checkpoints
 */
export type CheckpointedOptions<A> = Checkpoint.OutboxOptions<Omit<Options<A>, "binary">, Message<A>>

/**
 * Pub/sub resumed across restarts, for the outbox pattern: the producer writes each message where it stays (an
 * `XADD`, a row) and publishes its id; the consumer saves the id of the last message whose work is done
 * (`checkpoint.cursorOf`), and on start — and after every reconnect — `onResync({ cursor })` reads what came
 * after it. Messages are `Delivery` values: run the work with `Delivery.process`.
 *
 * @since 0.2.0
 * @category checkpoints
 */
export const checkpointed = <A = string>(
  options: CheckpointedOptions<A>
): Effect.Effect<
  Checkpoint.Resumed<Handle<A>, Message<A>>,
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
): Stream.Stream<Delivery.Delivery<Message<A>>, ConnectorError.ConnectorError, Checkpoint.Store> =>
  Checkpoint.deliveries(checkpointed(options))
