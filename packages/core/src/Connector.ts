/**
 * A connector handle over a `Driver`: the options every connector shares (resolved once, invalid ones failing with
 * a `Config` reason), the handle (messages, in-band signals, lifecycle events, status, stats) and its two
 * constructors, `make` and `stream`. The driver contract is `Driver`; the runtime behind `make` (connection loop,
 * reconnect, watchdog, resync) is internal.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ConnectorError from "./ConnectorError.ts"
import type * as Decode from "./Decode.ts"
import type * as Driver from "./Driver.ts"
import * as Machine from "./internal/machine.ts"
import type * as Lifecycle from "./Lifecycle.ts"
import * as Overflow from "./Overflow.ts"

// -----------------------------------------------------------------------------------------------------------------
// Options
// -----------------------------------------------------------------------------------------------------------------

/**
 * Liveness watchdog settings.
 *
 * @since 0.1.0
 * @category options
 */
export interface Liveness {
  /** How long a connection may be silent before it is probed. */
  readonly interval?: Duration.Input | undefined
  /** How long a probe may take (or, for idle timers, how long silence may last). */
  readonly timeout?: Duration.Input | undefined
}

/**
 * The options every connector takes, with the defaults of DESIGN.md §3.
 *
 * @since 0.1.0
 * @category options
 */
export interface CommonOptions<Item> {
  /** Labels the metrics; default `"default"`. */
  readonly name?: string | undefined
  /**
   * Default `true`: exponential from 250 ms, ×2, capped at 30 s, jittered, forever; reset once a connection has
   * stayed up for `stableAfter`. `false`: the first error fails the stream. A `Schedule` of your own: its input
   * is the `ConnectorError`. Only retryable errors are retried in any case.
   */
  readonly reconnect?: boolean | Schedule.Schedule<unknown, ConnectorError.ConnectorError> | undefined
  /** A connection that stayed up this long resets the reconnect schedule; default 10 seconds. */
  readonly stableAfter?: Duration.Input | undefined
  /** Dial + handshake + subscribe must finish within this; default 10 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /** `false` turns the watchdog off; defaults are the connector's. */
  readonly liveness?: false | Liveness | undefined
  /** Buffer between source and consumer; defaults are the connector's. */
  readonly overflow?: Overflow.Options | undefined
  /**
   * Runs after every reconnect, after the `Gap` and before live messages: what it returns is emitted first
   * (e.g. rows of an outbox table written while the connection was down).
   */
  readonly onResync?:
    | ((info: ResyncInfo) => Effect.Effect<ReadonlyArray<Item>, ConnectorError.ConnectorError>)
    | undefined
  /**
   * When the source was last consumed before this handle (epoch milliseconds: a restored checkpoint's time, see
   * `Checkpoint.resume`): the first connection is a reconnect after an outage, and opens with a `Gap` whose
   * downtime counts from there. Default: none (the first connection has no `Gap`).
   */
  readonly lastSeenAt?: number | undefined
}

/**
 * @since 0.1.0
 * @category options
 */
export interface ResyncInfo {
  readonly attempt: number
  readonly downtime: Duration.Duration
}

/**
 * A connector's defaults for the common options.
 *
 * @since 0.1.0
 * @category options
 */
export interface Defaults {
  /**
   * The names the connector's users write for options that core knows under another (websocket: `heartbeat`,
   * `handshakeTimeout`; sse and http-stream: `idleTimeout`): a `Config` error names the option the user wrote.
   */
  readonly optionNames?:
    | { readonly liveness?: string | undefined; readonly connectTimeout?: string | undefined }
    | undefined
  readonly overflow?: Overflow.Defaults | undefined
  readonly liveness: false | { readonly interval: Duration.Input; readonly timeout: Duration.Input }
}

/**
 * The common options, validated and complete.
 *
 * @since 0.1.0
 * @category options
 */
export interface Resolved<Item> {
  readonly connector: string
  readonly name: string
  readonly schedule: Schedule.Schedule<unknown, ConnectorError.ConnectorError> | undefined
  readonly stableAfter: Duration.Duration
  readonly connectTimeout: Duration.Duration
  readonly liveness: { readonly interval: Duration.Duration; readonly timeout: Duration.Duration } | undefined
  readonly policy: Overflow.Policy
  readonly onResync: CommonOptions<Item>["onResync"]
  readonly lastSeenAt: number | undefined
}

/**
 * The default reconnect schedule: exponential from 250 ms, ×2, capped at 30 s, jittered, forever.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultReconnect: Schedule.Schedule<unknown, unknown> = Schedule.min([
  Schedule.exponential("250 millis", 2),
  Schedule.spaced("30 seconds")
]).pipe(Schedule.jittered)

/**
 * Validates a duration option: a `Config` error naming it when it is not a non-negative duration.
 *
 * @since 0.1.0
 * @category options
 */
export const duration = (
  connector: string,
  option: string,
  value: Duration.Input | undefined,
  fallback: Duration.Input
): Effect.Effect<Duration.Duration, ConnectorError.ConnectorError> => {
  const decoded = decodeDuration((value ?? fallback) as Duration.Input)
  if (decoded === undefined || Duration.isNegative(decoded)) {
    return Effect.fail(ConnectorError.config(connector, option, value, 'a duration such as 5000 or "5 seconds"'))
  }
  return Effect.succeed(decoded)
}

/**
 * Durations decoded from the same text or number are one shared (immutable) value: a service holding thousands of
 * handles with the same options holds their durations once. Bounded, for options computed at run time.
 */
const decodedDurations = new Map<string | number, Duration.Duration>()

const decodeDuration = (input: Duration.Input): Duration.Duration | undefined => {
  const key = typeof input === "string" || typeof input === "number" ? input : undefined
  const cached = key === undefined ? undefined : decodedDurations.get(key)
  if (cached !== undefined) return cached
  const decoded = Duration.fromInput(input)
  if (Option.isNone(decoded)) return undefined
  if (key !== undefined && decodedDurations.size < 256) decodedDurations.set(key, decoded.value)
  return decoded.value
}

/**
 * Validates a `"fail" | "skip"` policy option (`onDecodeError`, `onOversized`); default `"fail"`. Fails with a
 * `Config` reason naming the option.
 *
 * @since 0.1.0
 * @category options
 */
export const failOrSkip = (
  connector: string,
  option: string,
  value: Decode.OnDecodeError | undefined
): Effect.Effect<Decode.OnDecodeError, ConnectorError.ConnectorError> => {
  const policy = value ?? "fail"
  return policy === "fail" || policy === "skip"
    ? Effect.succeed(policy)
    : Effect.fail(ConnectorError.config(connector, option, value, '"fail" or "skip"'))
}

/**
 * An `idleTimeout` option (a duration, or `false` for none) as the `liveness` of a source without a probe: a
 * connection that received nothing for that long is dead. Fails with a `Config` reason naming `idleTimeout`.
 *
 * @since 0.1.0
 * @category options
 */
export const idleTimeout = (
  connector: string,
  value: Duration.Input | false | undefined,
  fallback: Duration.Input
): Effect.Effect<false | Liveness, ConnectorError.ConnectorError> => {
  if (value === false) return Effect.succeed(false)
  const decoded = value === undefined ? undefined : Duration.fromInput(value)
  // Zero would declare every connection dead at once: only a positive duration is a timeout.
  if (decoded !== undefined && (Option.isNone(decoded) || !Duration.isGreaterThan(decoded.value, Duration.zero))) {
    return Effect.fail(
      ConnectorError.config(
        connector,
        "idleTimeout",
        value,
        'a positive duration such as 30000 or "30 seconds", or false'
      )
    )
  }
  return Effect.succeed({ interval: value ?? fallback, timeout: value ?? fallback })
}

/**
 * The common options of a connector that reads an HTTP body (sse, http-stream): `idleTimeout` (a duration, or
 * `false`) is its watchdog, since a body has no ping; and a lossless buffer sized for pull reads — every pause
 * stops reading the body for an event-loop turn, so 16,384 records make pauses rare for a consumer that keeps up
 * (measured on NDJSON: 1,024 → 0.4–0.55× raw, 4,096 → 0.70×, 16,384 → 0.85×), with room for the chunk being split
 * when the pause comes (64 KiB: at most 32,768 records of a line end each).
 *
 * @since 0.2.0
 * @category options
 */
export const resolveBody = <Item>(
  connector: string,
  options: Omit<CommonOptions<Item>, "liveness"> & { readonly idleTimeout?: Duration.Input | false | undefined },
  idleTimeoutDefault: Duration.Input
): Effect.Effect<Resolved<Item>, ConnectorError.ConnectorError> =>
  Effect.flatMap(idleTimeout(connector, options.idleTimeout, idleTimeoutDefault), (liveness) =>
    resolve<Item>(
      connector,
      { ...options, liveness },
      {
        optionNames: { liveness: "idleTimeout" },
        liveness: false,
        overflow: { strategy: "suspend", bufferSize: 16_384, hardCap: (size) => size + 32_768 }
      }
    )
  )

/**
 * Resolves the common options once, failing with a `Config` reason naming the first invalid option.
 *
 * @since 0.1.0
 * @category options
 */
export const resolve = <Item>(
  connector: string,
  options: CommonOptions<Item>,
  defaults: Defaults
): Effect.Effect<Resolved<Item>, ConnectorError.ConnectorError> =>
  Effect.gen(function* () {
    const name = options.name ?? "default"
    if (typeof name !== "string" || name === "") {
      return yield* Effect.fail(ConnectorError.config(connector, "name", name, "a non-empty string"))
    }
    const reconnect = options.reconnect ?? true
    if (typeof reconnect !== "boolean" && !Schedule.isSchedule(reconnect)) {
      return yield* Effect.fail(ConnectorError.config(connector, "reconnect", reconnect, "a boolean or a Schedule"))
    }
    const livenessName = defaults.optionNames?.liveness ?? "liveness"
    const stableAfter = yield* duration(connector, "stableAfter", options.stableAfter, "10 seconds")
    const connectTimeout = yield* duration(
      connector,
      defaults.optionNames?.connectTimeout ?? "connectTimeout",
      options.connectTimeout,
      "10 seconds"
    )
    let liveness: Resolved<Item>["liveness"]
    // The connector's watchdog, or one the caller asked for where the connector has none by default.
    const livenessDefaults: { readonly interval: Duration.Input; readonly timeout: Duration.Input } =
      defaults.liveness !== false ? defaults.liveness : { interval: "30 seconds", timeout: "10 seconds" }
    if (options.liveness !== false && (defaults.liveness !== false || options.liveness !== undefined)) {
      liveness = {
        interval: yield* duration(
          connector,
          `${livenessName}.interval`,
          options.liveness?.interval,
          livenessDefaults.interval
        ),
        timeout: yield* duration(
          connector,
          `${livenessName}.timeout`,
          options.liveness?.timeout,
          livenessDefaults.timeout
        )
      }
      if (Duration.isZero(liveness.interval) || Duration.isZero(liveness.timeout)) {
        return yield* Effect.fail(
          ConnectorError.config(connector, livenessName, options.liveness, "positive interval and timeout")
        )
      }
    }
    if (options.onResync !== undefined && typeof options.onResync !== "function") {
      return yield* Effect.fail(ConnectorError.config(connector, "onResync", options.onResync, "a function"))
    }
    const policy = yield* Overflow.resolve(connector, options.overflow, defaults.overflow)
    const lastSeenAt = options.lastSeenAt
    if (lastSeenAt !== undefined && (typeof lastSeenAt !== "number" || !Number.isFinite(lastSeenAt))) {
      return yield* Effect.fail(ConnectorError.config(connector, "lastSeenAt", lastSeenAt, "epoch milliseconds"))
    }
    return {
      connector,
      name,
      schedule:
        reconnect === false
          ? undefined
          : reconnect === true
            ? (defaultReconnect as Schedule.Schedule<unknown, ConnectorError.ConnectorError>)
            : reconnect,
      stableAfter,
      connectTimeout,
      liveness,
      policy,
      onResync: options.onResync,
      lastSeenAt
    }
  })

// -----------------------------------------------------------------------------------------------------------------
// The handle
// -----------------------------------------------------------------------------------------------------------------

/**
 * A scoped handle over one logical connection (reconnected as needed). Consume either `messages` or `signals`:
 * both read the same buffer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handle<Conn, Item> {
  /** The messages; fails with the error that ended the connector for good. */
  readonly messages: Stream.Stream<Item, ConnectorError.ConnectorError>
  /** The messages with the lifecycle events in-band, in order. */
  readonly signals: Stream.Stream<Lifecycle.Signal<Item>, ConnectorError.ConnectorError>
  /**
   * Lifecycle events out of band: the status at the moment of subscription first, then every event after it.
   * Nothing is dropped for a slow subscriber (lifecycle events are few: at most a handful per connection attempt).
   */
  readonly events: Stream.Stream<Lifecycle.Event>
  /** The state now. */
  readonly status: Effect.Effect<Lifecycle.Status>
  /** The state now, then every change of it (`events` without `Gap`): to wait for a state without polling. */
  readonly statusChanges: Stream.Stream<Lifecycle.Status>
  /** The live connection, or a `Closed` error while there is none. */
  readonly connection: Effect.Effect<Conn, ConnectorError.ConnectorError>
  /**
   * The live connection, waiting for it while connecting or reconnecting; fails with the error that closed the
   * connector for good (bound the wait with `Effect.timeout` where it matters).
   */
  readonly awaitConnection: Effect.Effect<Conn, ConnectorError.ConnectorError>
  /** Counts for this handle. */
  readonly stats: Effect.Effect<Stats>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Messages handed to the consumer (lifecycle events are not counted). */
  readonly delivered: number
  /** Messages dropped by the overflow strategy or discarded by the driver. */
  readonly dropped: number
  /** Messages buffered now. */
  readonly depth: number
  readonly reconnects: number
  /** Times the source was paused by the `"suspend"` strategy. */
  readonly pauses: number
}

/**
 * Builds the handle: connects in the background of the current Scope and keeps the connection alive until the
 * Scope closes or the connector ends for good.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <Conn, Item>(
  driver: Driver.Driver<Conn, Item>,
  options: Resolved<Item>
) => Effect.Effect<Handle<Conn, Item>, never, Scope.Scope> = Machine.make

/**
 * `make` as a stream of messages: connects when run, closes everything when done. `setup` resolves the options
 * (failing with a `Config` reason) and builds the driver from them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stream = <Conn, Item>(
  setup: Effect.Effect<
    { readonly driver: Driver.Driver<Conn, Item>; readonly options: Resolved<Item> },
    ConnectorError.ConnectorError
  >
): Stream.Stream<Item, ConnectorError.ConnectorError> =>
  Stream.unwrap(
    Effect.flatMap(setup, ({ driver, options }) => Effect.map(make(driver, options), (handle) => handle.messages))
  )

/**
 * A value given as is, or as an Effect evaluated on every connection attempt (fresh tokens, rotated URLs).
 *
 * @since 0.1.0
 * @category options
 */
export type PerAttempt<A> = A | Effect.Effect<A, ConnectorError.ConnectorError>

/**
 * The release of one connection, for `Effect.addFinalizer((exit) => …)` in a driver's `connect`: when the caller
 * is done (the attempt succeeded or was interrupted), `goodbye` (UNLISTEN, QUIT…) gets at most `grace`; then, and
 * at once after a failure or when there is no `goodbye` (the connection is broken), `cut` closes the socket.
 *
 * @since 0.1.0
 * @category drivers
 */
export const release = (
  exit: Exit.Exit<unknown, unknown>,
  goodbye: (() => Promise<unknown>) | undefined,
  cut: () => void,
  grace: Duration.Input = "1 second"
): Effect.Effect<void> => {
  const polite = goodbye !== undefined && (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause))
  return Effect.andThen(
    polite
      ? Effect.timeoutOption(
          Effect.promise(() => goodbye().catch(() => {})),
          grace
        )
      : Effect.void,
    Effect.sync(cut)
  )
}

/**
 * Flow control for a source the driver reads in a loop (an HTTP body): registered with the session, it turns the
 * buffer's pause into a wait before the next read. `beforeRead()` resolves at once while the consumer keeps up,
 * and when the buffer resumes the source otherwise; a read waiting on it is released when the connection's Scope
 * closes (its read then fails and is ignored).
 *
 * @since 0.2.0
 * @category drivers
 */
export const pullGate = (
  session: Driver.Session<never>
): Effect.Effect<{ readonly beforeRead: () => Promise<void> | undefined }, never, Scope.Scope> =>
  Effect.gen(function* () {
    let paused = false
    let wake: (() => void) | undefined
    const release = () => {
      const waiting = wake
      wake = undefined
      waiting?.()
    }
    session.flowControl({
      pause: () => {
        paused = true
      },
      resume: () => {
        paused = false
        release()
      }
    })
    yield* Effect.addFinalizer(() => Effect.sync(release))
    return {
      // What the last read pushed goes to the buffer first, so that the pause it may cause is seen now.
      beforeRead: () => {
        session.flush()
        return paused ? new Promise<void>((resolve) => (wake = resolve)) : undefined
      }
    }
  })
