/**
 * The connector machinery. A connector supplies a small `Driver` — how to dial its library and attach listeners,
 * how to probe liveness — and core does the rest, the same way for every connector: reconnect with a `Schedule`,
 * the liveness watchdog, lifecycle events in-band and out, ordered resync after an outage, overflow policy,
 * metrics and typed errors.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ConnectorError from "./ConnectorError.ts"
import { Buffer } from "./internal/buffer.ts"
import * as Lifecycle from "./Lifecycle.ts"
import * as Metrics from "./Metrics.ts"
import * as Overflow from "./Overflow.ts"

// -----------------------------------------------------------------------------------------------------------------
// The driver contract
// -----------------------------------------------------------------------------------------------------------------

/**
 * A driver's view of one connection. Its callbacks are safe to call from any library callback, at any time:
 * after the connection ended they are no-ops (a late event of an old socket never reaches the stream).
 *
 * @since 0.1.0
 * @category driver
 */
export interface Session<in Item> {
  /** 1 for the first connection attempt. */
  readonly attempt: number
  /** Pushes one message; `false` when the overflow strategy dropped it (counted) or the session is over. */
  readonly emit: (item: Item) => boolean
  /** Pushes messages that arrived together (one array through the stream: cheaper than one by one). */
  readonly emitAll: (items: ReadonlyArray<Item>) => boolean
  /** Payload bytes received: counted in the metrics, and proof of life for the liveness watchdog. */
  readonly received: (bytes: number) => void
  /**
   * `received(bytes)` then `emit(item)`, batched: everything pushed this way before the current callback returns
   * enters the stream as one array, at the next microtask checkpoint (or earlier, before any other `emit`, `end`
   * or `fail`, so order is kept). For libraries that call back once per message for the many messages of one
   * socket read (ws, pg, ioredis): one buffer operation per read instead of one per message.
   */
  readonly push: (item: Item, bytes: number) => void
  /** Delivers what `push` holds now (a driver that reads in a loop calls it at the end of each chunk). */
  readonly flush: () => void
  /** Traffic without payload (pong, comment, heartbeat): proof of life for the watchdog. */
  readonly alive: () => void
  /** A message was skipped by the decode policy: counted in `streamemit_decode_skipped_total`. */
  readonly skipped: () => void
  /** The driver itself discarded `count` messages (e.g. intermediate states merged away): counted as dropped. */
  readonly dropped: (count: number) => void
  /** The source ended normally (e.g. WebSocket close 1000): the stream ends, no reconnect. */
  readonly end: () => void
  /** The connection broke: core reconnects if the error is retryable and reconnect is on; else the stream fails. */
  readonly fail: (error: ConnectorError.ConnectorError) => void
  /** The next reconnect waits at least this long (SSE `retry:`, HTTP `Retry-After`). */
  readonly setReconnectFloor: (delay: Duration.Input) => void
  /** Registers the transport's pause/resume, used by the `"suspend"` overflow strategy. */
  readonly flowControl: (control: Overflow.FlowControl) => void
}

/**
 * What a connector supplies.
 *
 * @since 0.1.0
 * @category driver
 */
export interface Driver<Conn, Item> {
  /** Labels errors and metrics: `"websocket"`, `"pg-listen"`, … */
  readonly connector: string
  /**
   * Dials, authenticates, subscribes and attaches listeners that feed `session`, in the Scope of this connection:
   * everything acquired there is released when the connection ends, fails or is interrupted. Succeeds once the
   * connection is usable (that is when `Connected` is published). A `session.fail` while connecting fails the
   * attempt at once, whatever `connect` is still waiting for.
   */
  readonly connect: (session: Session<Item>) => Effect.Effect<Conn, ConnectorError.ConnectorError, Scope.Scope>
  /**
   * Liveness probe (ws ping, `SELECT 1`, `PING`), run after `liveness.interval` without traffic; it must succeed
   * within `liveness.timeout`. Without a probe, the watchdog is an idle timer: no traffic for `timeout` is death.
   */
  readonly probe?: ((conn: Conn) => Effect.Effect<void, ConnectorError.ConnectorError>) | undefined
  /** What an outage means for data; default `"possible-loss"`. */
  readonly delivery?: (() => Lifecycle.Delivery) | undefined
  /**
   * Messages flow while connecting, ahead of `Connected` (a file watcher's initial scan comes before its
   * `ready`). Default `false`: messages of a new connection wait behind `Connected`, `Gap` and the resync. A
   * function decides per attempt (a watcher's rescan after a lost event comes after its `Gap`).
   */
  readonly ungated?: boolean | ((attempt: number) => boolean) | undefined
}

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
  const decoded = Duration.fromInput((value ?? fallback) as Duration.Input)
  if (Option.isNone(decoded) || Duration.isNegative(decoded.value)) {
    return Effect.fail(ConnectorError.config(connector, option, value, 'a duration such as 5000 or "5 seconds"'))
  }
  return Effect.succeed(decoded.value)
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
  value: OnDecodeError | undefined
): Effect.Effect<OnDecodeError, ConnectorError.ConnectorError> => {
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
  if (value !== undefined && Option.isNone(Duration.fromInput(value))) {
    return Effect.fail(
      ConnectorError.config(connector, "idleTimeout", value, 'a duration such as 30000 or "30 seconds", or false')
    )
  }
  return Effect.succeed({ interval: value ?? fallback, timeout: value ?? fallback })
}

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
    const stableAfter = yield* duration(connector, "stableAfter", options.stableAfter, "10 seconds")
    const connectTimeout = yield* duration(connector, "connectTimeout", options.connectTimeout, "10 seconds")
    let liveness: Resolved<Item>["liveness"]
    if (options.liveness !== false && defaults.liveness !== false) {
      liveness = {
        interval: yield* duration(
          connector,
          "liveness.interval",
          options.liveness?.interval,
          defaults.liveness.interval
        ),
        timeout: yield* duration(connector, "liveness.timeout", options.liveness?.timeout, defaults.liveness.timeout)
      }
      if (Duration.isZero(liveness.interval) || Duration.isZero(liveness.timeout)) {
        return yield* Effect.fail(
          ConnectorError.config(connector, "liveness", options.liveness, "positive interval and timeout")
        )
      }
    } else if (options.liveness !== false && options.liveness !== undefined) {
      // The connector has no watchdog by default, but the caller asked for one.
      liveness = {
        interval: yield* duration(connector, "liveness.interval", options.liveness.interval, "30 seconds"),
        timeout: yield* duration(connector, "liveness.timeout", options.liveness.timeout, "10 seconds")
      }
    }
    if (options.onResync !== undefined && typeof options.onResync !== "function") {
      return yield* Effect.fail(ConnectorError.config(connector, "onResync", options.onResync, "a function"))
    }
    const policy = yield* Overflow.resolve(connector, options.overflow, defaults.overflow)
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
      onResync: options.onResync
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

class SessionState<Item> implements Session<Item> {
  active = true
  /** Traffic seen (messages, bytes, pongs): a count, so the hot path reads no clock. */
  activity = 0
  private seenActivity = 0
  private lastActivity: number
  ended: { readonly _tag: "End" } | { readonly _tag: "Fail"; readonly error: ConnectorError.ConnectorError } | undefined
  notify: (() => void) | undefined = undefined
  messages = 0
  bytes = 0
  readonly attempt: number
  private readonly core: Runtime<Item>

  constructor(core: Runtime<Item>, attempt: number, now: number) {
    this.core = core
    this.attempt = attempt
    this.lastActivity = now
  }

  private pending: Array<Item> = []
  private pendingBytes = 0

  push = (item: Item, bytes: number): void => {
    if (this.pending.length === 0) queueMicrotask(this.flush)
    this.pending.push(item)
    this.pendingBytes += bytes
  }

  readonly flush = (): void => {
    if (this.pending.length === 0) return
    const items = this.pending
    this.pending = []
    this.received(this.pendingBytes)
    this.pendingBytes = 0
    this.deliver(items, true)
  }

  emit = (item: Item): boolean => {
    if (this.pending.length > 0) this.flush()
    // Nothing after the connection's end or failure, even from the rest of a chunk being split.
    if (!this.active || this.ended !== undefined) return false
    this.messages++
    this.activity++
    return this.core.buffer.offer(item)
  }

  emitAll = (items: ReadonlyArray<Item>): boolean => {
    if (this.pending.length > 0) this.flush()
    return this.deliver(items, false)
  }

  /** `owned`: the array is ours to hand over (the `push` batch), so the buffer may keep it without a copy. */
  private deliver(items: ReadonlyArray<Item>, owned: boolean): boolean {
    if (!this.active || this.ended !== undefined) return false
    this.messages += items.length
    this.activity++
    return this.core.buffer.offerAll(items, owned)
  }

  received = (bytes: number): void => {
    this.bytes += bytes
    // Liveness from payload is counted, not timed: the watchdog reads the count (no clock on the hot path).
    this.activity++
  }

  alive = (): void => {
    this.activity++
  }

  /**
   * When traffic was last seen, on the clock of `activeNow` (time paused by our buffer does not pass): moved
   * forward when the activity count changed since the last look.
   */
  lastSeen(): number {
    if (this.activity !== this.seenActivity) {
      this.seenActivity = this.activity
      this.lastActivity = this.core.activeNow()
    }
    return this.lastActivity
  }

  skipped = (): void => {
    this.core.update(this.core.metrics.decodeSkipped, 1)
  }

  dropped = (count: number): void => {
    if (!this.active || count <= 0) return
    this.core.buffer.dropped += count
    this.core.update(this.core.metrics.dropped, count)
  }

  end = (): void => this.settle({ _tag: "End" })

  fail = (error: ConnectorError.ConnectorError): void => this.settle({ _tag: "Fail", error })

  private settle(outcome: NonNullable<SessionState<Item>["ended"]>): void {
    if (!this.active || this.ended !== undefined) return
    // What arrived before the end is delivered before it.
    if (this.pending.length > 0) this.flush()
    this.ended = outcome
    this.notify?.()
  }

  setReconnectFloor = (delay: Duration.Input): void => {
    const decoded = Duration.fromInput(delay)
    if (Option.isSome(decoded)) this.core.reconnectFloor = decoded.value
  }

  flowControl = (control: Overflow.FlowControl): void => {
    if (this.active) this.core.buffer.setFlowControl(control)
  }

  /** Fails with the error the driver reports; never succeeds (an end is not a failure). */
  readonly awaitFailure: Effect.Effect<never, ConnectorError.ConnectorError> = Effect.flatMap(
    Effect.suspend(() => this.awaitEnd),
    () => Effect.never
  )

  /** Waits until the driver reports the end or failure of the connection. */
  readonly awaitEnd: Effect.Effect<void, ConnectorError.ConnectorError> = Effect.callback((resume) => {
    const check = () => {
      const outcome = this.ended
      if (outcome === undefined) return false
      this.notify = undefined
      resume(outcome._tag === "End" ? Effect.void : Effect.fail(outcome.error))
      return true
    }
    if (!check()) this.notify = check
    return Effect.sync(() => {
      this.notify = undefined
    })
  })
}

/** An event with its place in the sequence of published events. */
interface Sequenced {
  readonly seq: number
  readonly event: Lifecycle.Event
}

class Runtime<Item> {
  readonly buffer: Buffer<Item | Lifecycle.Event, ConnectorError.ConnectorError>
  readonly options: Resolved<Item>
  readonly metrics: Metrics.ConnectorMetrics
  readonly now: () => number
  reconnectFloor: Duration.Duration = Duration.zero
  reconnects = 0
  status: Lifecycle.Status = new Lifecycle.Connecting({ attempt: 1 })
  current: unknown = undefined
  /** When the current connection went live (announced, resynced, delivering): `undefined` until then. */
  liveAt: number | undefined = undefined
  /** Events published so far: an `events` subscriber skips those its first status already covers. */
  published = 0
  /** Called on every status change (`awaitConnection`); a waiter returns `true` when it is done. */
  readonly statusWaiters = new Set<() => boolean>()
  private readonly pubsub: PubSub.PubSub<Sequenced>
  private readonly context: Parameters<Metrics.ConnectorMetrics["messages"]["updateUnsafe"]>[1]
  private session: SessionState<Item> | undefined = undefined

  constructor(
    buffer: Buffer<Item | Lifecycle.Event, ConnectorError.ConnectorError>,
    options: Resolved<Item>,
    pubsub: PubSub.PubSub<Sequenced>,
    clock: Clock.Clock,
    context: Runtime<Item>["context"]
  ) {
    this.buffer = buffer
    this.options = options
    this.pubsub = pubsub
    this.now = () => clock.currentTimeMillisUnsafe()
    this.context = context
    this.metrics = Metrics.forConnector(options.connector, options.name)
    buffer.onDrop = (count) => this.metrics.dropped.updateUnsafe(count, context)
    buffer.onSpace = () => this.flushCounts()
  }

  /**
   * The clock of liveness and connect timeouts: time while our buffer holds the source paused does not pass (the
   * silence of a paused transport is ours, not the peer's).
   */
  activeNow(): number {
    return this.now() - this.buffer.pausedMillis()
  }

  /** Message and byte counts are kept in plain numbers on the hot path and moved to the metrics per batch. */
  flushCounts(): void {
    const session = this.session
    if (session === undefined) return
    if (session.messages > 0) {
      this.metrics.messages.updateUnsafe(session.messages, this.context)
      session.messages = 0
    }
    if (session.bytes > 0) {
      this.metrics.bytes.updateUnsafe(session.bytes, this.context)
      session.bytes = 0
    }
  }

  observeDepth(depth: number): void {
    this.metrics.bufferDepth.updateUnsafe(depth, this.context)
  }

  newSession(attempt: number): SessionState<Item> {
    this.flushCounts()
    if (this.session !== undefined) this.session.active = false
    this.session = new SessionState(this, attempt, this.now())
    return this.session
  }

  endSession(session: SessionState<Item>): void {
    this.flushCounts()
    session.active = false
    this.current = undefined
    // Messages of a connection that died before it went live never reach the consumer: counted as dropped.
    this.buffer.discardHeld()
  }

  /** Publishes an event in-band (never dropped: it bypasses the overflow strategy) and out of band. */
  publish(event: Lifecycle.Event): void {
    this.buffer.pushMarked(event)
    this.publishOutOfBand(event)
  }

  publishOutOfBand(event: Lifecycle.Event): void {
    this.published++
    PubSub.publishUnsafe(this.pubsub, { seq: this.published, event })
    if (event._tag === "Gap") return
    this.status = event
    for (const waiter of this.statusWaiters) if (waiter()) this.statusWaiters.delete(waiter)
  }

  update(metric: { readonly updateUnsafe: (n: number, context: Runtime<Item>["context"]) => void }, n: number) {
    metric.updateUnsafe(n, this.context)
  }
}

const asConnectorError = (
  connector: string,
  cause: Cause.Cause<unknown>
): ConnectorError.ConnectorError | undefined => {
  const failure = cause.reasons.find((reason) => reason._tag === "Fail")
  if (failure !== undefined && ConnectorError.isConnectorError(failure.error)) return failure.error
  if (failure !== undefined) {
    return ConnectorError.make(
      connector,
      new ConnectorError.Connect({ message: String(failure.error), cause: failure.error })
    )
  }
  return undefined
}

const connectTimeoutError = (connector: string, timeout: Duration.Duration) =>
  ConnectorError.make(
    connector,
    new ConnectorError.Timeout({ message: `connect did not finish within ${Duration.format(timeout)}` })
  )

const livenessError = (connector: string, message: string) =>
  ConnectorError.make(connector, new ConnectorError.Timeout({ message }))

const closedError = (connector: string) =>
  ConnectorError.make(connector, new ConnectorError.Closed({ message: "the connector is closed" }))

/** A defect as the error of the `Disconnected`/`Closed` events it causes (the stream itself fails with the defect). */
const diedError = (connector: string, cause: Cause.Cause<unknown>) => {
  const defect = Cause.squash(cause)
  return ConnectorError.make(
    connector,
    new ConnectorError.Closed({
      message: `died: ${defect instanceof Error ? defect.message : String(defect)}`,
      cause: defect,
      retryable: false
    })
  )
}

/**
 * Sleeps until `millis` have passed on the `activeNow` clock: time while our buffer holds the source paused
 * does not count. Looks at least every quarter of `millis`, so a resume is noticed soon.
 */
const activeSleep = <Item>(core: Runtime<Item>, millis: number): Effect.Effect<void> =>
  Effect.suspend(() => {
    const until = core.activeNow() + millis
    const step = Math.max(1, millis / 4)
    const loop: Effect.Effect<void> = Effect.suspend(() => {
      const left = until - core.activeNow()
      return left <= 0 ? Effect.void : Effect.flatMap(Effect.sleep(Math.min(left, step)), () => loop)
    })
    return loop
  })

/** `effect`, failing with `onTimeout` once `duration` has passed on the `activeNow` clock. */
const activeTimeout = <A, Item>(
  core: Runtime<Item>,
  effect: Effect.Effect<A, ConnectorError.ConnectorError, Scope.Scope>,
  duration: Duration.Duration,
  onTimeout: () => ConnectorError.ConnectorError
): Effect.Effect<A, ConnectorError.ConnectorError, Scope.Scope> =>
  Duration.isFinite(duration)
    ? Effect.raceFirst(
        effect,
        Effect.flatMap(activeSleep(core, Duration.toMillis(duration)), () => Effect.fail(onTimeout()))
      )
    : effect

/**
 * Hands a resync's replay to the buffer: ahead of the live messages held behind the gate, pulled as the consumer
 * takes under `"suspend"`/`"fail"` (a replay of any length is delivered in full, memory stays at the buffer's
 * size), offered as live traffic under `"dropping"`/`"sliding"` (what does not fit is counted).
 */
const replay = <Item>(core: Runtime<Item>, items: ReadonlyArray<Item>): Effect.Effect<void> => {
  const buffer = core.buffer
  let from = 0
  const loop: Effect.Effect<void> = Effect.suspend(() => {
    from += buffer.pushReplay(items, from)
    if (from >= items.length || !buffer.isOpen) return Effect.void
    return Effect.flatMap(buffer.awaitRoom, () => loop)
  })
  return loop
}

/** Runs one connection until it ends: `true` when the source ended normally. */
const runConnection = <Conn, Item>(
  driver: Driver<Conn, Item>,
  core: Runtime<Item>,
  attempt: number,
  downSince: number | undefined
): Effect.Effect<void, ConnectorError.ConnectorError, Scope.Scope> =>
  Effect.gen(function* () {
    const { options } = core
    const session = core.newSession(attempt)
    yield* Effect.addFinalizer(() => Effect.sync(() => core.endSession(session)))
    // Messages of a connection that is not live yet (Connected, Gap, resync) wait behind a gate: they obey the
    // overflow policy (a full buffer pauses the source, or drops and counts) and follow those events.
    const ungated = typeof driver.ungated === "function" ? driver.ungated(attempt) : driver.ungated === true
    if (!ungated) core.buffer.closeGate()
    // A failure the driver reports while connecting ends the attempt at once: a reply that never comes (a
    // redirected subscribe, a half-open socket) must not hold it until the connect timeout. Time while the
    // consumer holds the source paused (an ungated watcher's initial scan) does not count against the timeout.
    const conn = yield* activeTimeout(
      core,
      Effect.raceFirst(driver.connect(session), session.awaitFailure),
      options.connectTimeout,
      () => connectTimeoutError(options.connector, options.connectTimeout)
    )
    const connectedAt = core.now()
    core.current = conn
    core.reconnectFloor = Duration.zero
    core.update(core.metrics.connected, 1)
    yield* Effect.addFinalizer(() => Effect.sync(() => core.update(core.metrics.connected, 0)))
    core.publish(new Lifecycle.Connected({ attempt }))
    if (downSince !== undefined) {
      const downtime = Duration.millis(Math.max(0, connectedAt - downSince))
      core.update(core.metrics.downtimeMillis, Duration.toMillis(downtime))
      core.publish(new Lifecycle.Gap({ downtime, delivery: driver.delivery?.() ?? "possible-loss" }))
      if (options.onResync !== undefined) {
        const onResync = options.onResync
        // A connection that dies during a long resync ends the attempt at once.
        yield* Effect.raceFirst(
          Effect.flatMap(
            Effect.suspend(() => onResync({ attempt, downtime })),
            (items) => replay(core, items)
          ),
          session.awaitFailure
        )
      }
    }
    core.liveAt = core.now()
    core.buffer.openGate()
    const watchdog = liveness(driver, core, session, conn)
    if (watchdog !== undefined) yield* Effect.forkScoped(watchdog)
    yield* session.awaitEnd
  })

/**
 * The watchdog of one connection; it reports death through `session.fail`. It runs on the `activeNow` clock:
 * while our buffer holds the transport paused (a slow consumer), the silence is ours, so it neither counts nor
 * probes (a paused socket cannot read the answer). A dead peer is then found by TCP keepalive (on in the ws and
 * pg drivers, and by default in undici and ioredis), or once the consumer catches up.
 */
const liveness = <Conn, Item>(
  driver: Driver<Conn, Item>,
  core: Runtime<Item>,
  session: SessionState<Item>,
  conn: Conn
): Effect.Effect<void, never, Scope.Scope> | undefined => {
  const settings = core.options.liveness
  if (settings === undefined) return undefined
  const interval = Duration.toMillis(settings.interval)
  const timeout = Duration.toMillis(settings.timeout)
  const connector = core.options.connector
  if (driver.probe === undefined) {
    // Idle timer: any traffic counts; silence for `timeout` is death.
    return Effect.gen(function* () {
      while (session.active) {
        const wait = session.lastSeen() + timeout - core.activeNow()
        if (wait <= 0) {
          session.fail(livenessError(connector, `no data for ${Duration.format(settings.timeout)}: connection stalled`))
          return
        }
        yield* Effect.sleep(Math.min(wait, Math.max(1, timeout / 4)))
      }
    })
  }
  const probe = driver.probe
  return Effect.gen(function* () {
    while (session.active) {
      const wait = session.lastSeen() + interval - core.activeNow()
      if (wait > 0) {
        // Traffic is noticed when the watchdog looks, so it looks at least every quarter interval.
        yield* Effect.sleep(Math.min(wait, Math.max(1, interval / 4)))
        continue
      }
      const result = yield* activeTimeout(core, probe(conn), settings.timeout, () =>
        livenessError(connector, `liveness probe unanswered within ${Duration.format(settings.timeout)}`)
      ).pipe(Effect.result)
      if (Result.isFailure(result)) {
        session.fail(result.failure)
        return
      }
      session.alive()
    }
  })
}

/**
 * Builds the handle: connects in the background of the current Scope and keeps the connection alive until the
 * Scope closes or the connector ends for good.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Conn, Item>(
  driver: Driver<Conn, Item>,
  options: Resolved<Item>
): Effect.Effect<Handle<Conn, Item>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    const policy = options.policy
    const buffer = new Buffer<Item | Lifecycle.Event, ConnectorError.ConnectorError>({
      capacity: policy.bufferSize,
      strategy: policy.strategy,
      hardCap: policy.hardCap,
      overflow: Overflow.overflowError(options.connector, policy),
      isMarked: Lifecycle.isEvent,
      now: () => clock.currentTimeMillisUnsafe()
    })
    // Unbounded: a subscriber that reads slowly misses nothing, and lifecycle events are few.
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<Sequenced>(), PubSub.shutdown)
    const core = new Runtime<Item>(buffer, options, pubsub, clock, context)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (core.status._tag !== "Closed") core.publishOutOfBand(new Lifecycle.Closed({ error: undefined }))
        buffer.shutdown()
      })
    )

    const close = (error: ConnectorError.ConnectorError | undefined) =>
      Effect.sync(() => {
        core.publish(new Lifecycle.Closed({ error }))
        if (error === undefined) buffer.end()
        else buffer.failCause(Cause.fail(error))
      })

    const loop = Effect.gen(function* () {
      const stepFrom = (schedule: Schedule.Schedule<unknown, ConnectorError.ConnectorError>) =>
        Schedule.toStep(schedule)
      let step = options.schedule === undefined ? undefined : yield* stepFrom(options.schedule)
      // When the source was last live: the downtime of the next Gap counts from there, across attempts that
      // connected but failed before going live (e.g. in onResync).
      let downSince: number | undefined
      for (let attempt = 1; ; attempt++) {
        core.publish(new Lifecycle.Connecting({ attempt }))
        core.liveAt = undefined
        const exit = yield* Effect.exit(Effect.scoped(runConnection(driver, core, attempt, downSince)))
        const liveAt = core.liveAt
        if (Exit.isSuccess(exit)) return yield* close(undefined)
        const error = asConnectorError(options.connector, exit.cause)
        if (error === undefined) {
          // A defect (a bug in a driver or in onResync): the stream fails with it, and the status says so.
          if (!Cause.hasInterruptsOnly(exit.cause)) {
            const died = diedError(options.connector, exit.cause)
            core.publish(new Lifecycle.Disconnected({ attempt, error: died, retryIn: undefined }))
            core.publish(new Lifecycle.Closed({ error: died }))
          }
          return yield* Effect.failCause(exit.cause)
        }
        core.update(core.metrics.errors(error.reason._tag), 1)
        if (liveAt !== undefined) {
          // A live connection was lost: the next one opens with a Gap.
          downSince = core.now()
          const uptime = downSince - liveAt
          if (step !== undefined && uptime >= Duration.toMillis(options.stableAfter)) {
            step = yield* stepFrom(options.schedule!)
          }
        }
        if (step === undefined || !error.isRetryable) {
          core.publish(new Lifecycle.Disconnected({ attempt, error, retryIn: undefined }))
          return yield* close(error)
        }
        const next = yield* Effect.result(step(core.now(), error))
        if (Result.isFailure(next)) {
          core.publish(new Lifecycle.Disconnected({ attempt, error, retryIn: undefined }))
          return yield* close(error)
        }
        const retryIn = Duration.max(next.success[1], core.reconnectFloor)
        core.publish(new Lifecycle.Disconnected({ attempt, error, retryIn }))
        core.reconnects++
        core.update(core.metrics.reconnects, 1)
        yield* Effect.sleep(retryIn)
      }
    })
    yield* Effect.forkScoped(
      loop.pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.sync(() => buffer.failCause(cause as never))
        )
      ),
      { startImmediately: true }
    )

    const signals = Stream.fromPull(
      Effect.succeed(
        Effect.map(buffer.take, (batch) => {
          core.observeDepth(batch.length)
          const signals =
            buffer.markedInLastTake === 0
              ? batch.map((x) => new Lifecycle.Message({ message: x as Item }))
              : batch.map((x) => (Lifecycle.isEvent(x) ? x : new Lifecycle.Message({ message: x as Item })))
          return signals as unknown as readonly [Lifecycle.Signal<Item>, ...Array<Lifecycle.Signal<Item>>]
        })
      )
    )
    const takeMessages: Effect.Effect<readonly [Item, ...Array<Item>], ConnectorError.ConnectorError | Cause.Done> =
      Effect.flatMap(buffer.take, (batch) => {
        core.observeDepth(batch.length)
        // Lifecycle events are counted as they enter the buffer: most batches have none and are not scanned.
        if (buffer.markedInLastTake === 0) return Effect.succeed(batch as unknown as readonly [Item, ...Array<Item>])
        const messages = onlyMessages(batch)
        // A batch of lifecycle events only: take again.
        return messages === undefined ? takeMessages : Effect.succeed(messages)
      })
    const messages = Stream.fromPull(Effect.succeed(takeMessages))
    const events = Stream.unwrap(
      Effect.map(PubSub.subscribe(pubsub), (subscription) => {
        // The status now stands for every event published so far; the subscription may hold some of those.
        const seen = core.published
        return Stream.concat(
          Stream.succeed<Lifecycle.Event>(core.status),
          Stream.fromSubscription(subscription).pipe(
            Stream.filter((sequenced) => sequenced.seq > seen),
            Stream.map((sequenced) => sequenced.event)
          )
        )
      })
    )
    const awaitConnection = Effect.callback<Conn, ConnectorError.ConnectorError>((resume) => {
      const check = (): boolean => {
        const status = core.status
        if (status._tag === "Connected" && core.current !== undefined) resume(Effect.succeed(core.current as Conn))
        else if (status._tag === "Closed") resume(Effect.fail(status.error ?? closedError(options.connector)))
        else return false
        return true
      }
      if (check()) return
      core.statusWaiters.add(check)
      return Effect.sync(() => {
        core.statusWaiters.delete(check)
      })
    })
    return {
      messages,
      signals,
      events,
      awaitConnection,
      status: Effect.sync(() => core.status),
      connection: Effect.suspend(() =>
        core.current === undefined || core.status._tag !== "Connected"
          ? Effect.fail(
              ConnectorError.make(
                options.connector,
                new ConnectorError.Closed({ message: `not connected (${core.status._tag.toLowerCase()})` })
              )
            )
          : Effect.succeed(core.current as Conn)
      ),
      stats: Effect.sync(() => ({
        delivered: buffer.delivered,
        dropped: buffer.dropped,
        depth: buffer.size,
        reconnects: core.reconnects,
        pauses: buffer.pauses
      }))
    }
  })

/** The messages of a batch, without its lifecycle events; `undefined` when there are none. */
const onlyMessages = <Item>(
  batch: ReadonlyArray<Item | Lifecycle.Event>
): readonly [Item, ...Array<Item>] | undefined => {
  let events = 0
  for (let i = 0; i < batch.length; i++) if (Lifecycle.isEvent(batch[i])) events++
  if (events === 0) return batch as unknown as readonly [Item, ...Array<Item>]
  if (events === batch.length) return undefined
  return batch.filter((x) => !Lifecycle.isEvent(x)) as unknown as readonly [Item, ...Array<Item>]
}

/**
 * `make` as a stream of messages: connects when run, closes everything when done. `setup` resolves the options
 * (failing with a `Config` reason) and builds the driver from them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stream = <Conn, Item>(
  setup: Effect.Effect<
    { readonly driver: Driver<Conn, Item>; readonly options: Resolved<Item> },
    ConnectorError.ConnectorError
  >
): Stream.Stream<Item, ConnectorError.ConnectorError> =>
  Stream.unwrap(
    Effect.flatMap(setup, ({ driver, options }) => Effect.map(make(driver, options), (handle) => handle.messages))
  )

// -----------------------------------------------------------------------------------------------------------------
// Per-attempt values: URLs and headers
// -----------------------------------------------------------------------------------------------------------------

/**
 * A value given as is, or as an Effect evaluated on every connection attempt (fresh tokens, rotated URLs).
 *
 * @since 0.1.0
 * @category options
 */
export type PerAttempt<A> = A | Effect.Effect<A, ConnectorError.ConnectorError>

/**
 * Headers whose values may be `Redacted` (kept out of logs and errors).
 *
 * @since 0.1.0
 * @category options
 */
export type Headers = Readonly<Record<string, string | Redacted.Redacted<string>>>

/**
 * Parses an absolute URL with one of `protocols` (e.g. `["ws:", "wss:"]`); a `Config` error naming `option`
 * otherwise, with any password in the URL redacted.
 *
 * @since 0.1.0
 * @category options
 */
export const checkUrl = (
  connector: string,
  option: string,
  value: string | URL,
  protocols: ReadonlyArray<string>
): Effect.Effect<string, ConnectorError.ConnectorError> => {
  const expected = `an absolute ${protocols.map((p) => `${p}//`).join(" or ")} URL`
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    return Effect.fail(ConnectorError.config(connector, option, ConnectorError.redactUrl(String(value)), expected))
  }
  if (!protocols.includes(url.protocol)) {
    return Effect.fail(ConnectorError.config(connector, option, ConnectorError.redactUrl(url), expected))
  }
  return Effect.succeed(url.toString())
}

/**
 * A URL option resolved once: checked now when given as a value, checked on every attempt when an Effect.
 *
 * @since 0.1.0
 * @category options
 */
export const urlOption = (
  connector: string,
  value: PerAttempt<string | URL>,
  protocols: ReadonlyArray<string>
): Effect.Effect<Effect.Effect<string, ConnectorError.ConnectorError>, ConnectorError.ConnectorError> =>
  Effect.isEffect(value)
    ? Effect.succeed(Effect.flatMap(value, (url) => checkUrl(connector, "url", url, protocols)))
    : Effect.map(checkUrl(connector, "url", value, protocols), Effect.succeed)

/**
 * A header value for text that may go beyond Latin-1: its UTF-8 bytes, one character per byte, which is what an
 * HTTP client can put on the wire (undici rejects a character above U+00FF) and what the EventSource spec sends
 * as `Last-Event-ID`. ASCII comes out unchanged.
 *
 * @since 0.2.0
 * @category options
 */
export const utf8HeaderValue = (text: string): string => {
  if (!beyondAscii.test(text)) return text
  let out = ""
  for (const byte of utf8Encoder.encode(text)) out += String.fromCharCode(byte)
  return out
}

const utf8Encoder = new TextEncoder()
// biome-ignore lint/suspicious/noControlCharactersInRegex: the range test is the point
const beyondAscii = /[^\u0000-\u007f]/

// biome-ignore lint/suspicious/noControlCharactersInRegex: the range test is the point
const beyondLatin1 = /[^\u0000-\u00ff]/

/**
 * Headers with their `Redacted` values revealed, for the wire. A value with a character above U+00FF, which no
 * HTTP client can send as is, goes as its UTF-8 bytes (`utf8HeaderValue`).
 *
 * @since 0.1.0
 * @category options
 */
export const revealHeaders = (headers: Headers): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(headers)) {
    const text = Redacted.isRedacted(value) ? Redacted.value(value) : value
    out[key] = beyondLatin1.test(text) ? utf8HeaderValue(text) : text
  }
  return out
}

/**
 * A headers option as an Effect run on every attempt.
 *
 * @since 0.1.0
 * @category options
 */
export const headersOption = (
  value: PerAttempt<Headers> | undefined
): Effect.Effect<Record<string, string>, ConnectorError.ConnectorError> =>
  value === undefined
    ? Effect.sync(() => ({}))
    : Effect.isEffect(value)
      ? Effect.map(value, revealHeaders)
      : Effect.sync(() => revealHeaders(value))

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

// -----------------------------------------------------------------------------------------------------------------
// HTTP
// -----------------------------------------------------------------------------------------------------------------

/**
 * A `Retry-After` header value as a delay: delay-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`,
 * measured from `now`). `undefined` when absent, unparsable, or not in the future.
 *
 * @since 0.2.0
 * @category http
 */
export const retryAfter = (
  value: string | null | undefined,
  now: number = Date.now()
): Duration.Duration | undefined => {
  if (value === null || value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) {
    const seconds = Number(text)
    return seconds > 0 ? Duration.seconds(seconds) : undefined
  }
  const at = Date.parse(text)
  if (Number.isNaN(at) || at <= now) return undefined
  return Duration.millis(at - now)
}

/**
 * The error for a non-2xx HTTP status, the same for every connector that speaks HTTP (a WebSocket handshake
 * included): 401/403 → `Auth`; 408, 429 and 5xx → `Connect` (retried; a `Retry-After` in seconds or as an
 * HTTP-date becomes the floor of the next reconnect delay); any other status → a non-retryable `Protocol` error
 * naming it. `message` replaces the default `HTTP <status>`.
 *
 * @since 0.1.0
 * @category http
 */
export const httpStatusError = (
  connector: string,
  status: number,
  retryAfterHeader: string | null | undefined,
  session: Session<never>,
  message = `HTTP ${status}`
): ConnectorError.ConnectorError => {
  if (status === 401 || status === 403) return ConnectorError.make(connector, new ConnectorError.Auth({ message }))
  if (status === 408 || status === 429 || status >= 500) {
    const delay = retryAfter(retryAfterHeader)
    if (delay !== undefined) session.setReconnectFloor(delay)
    return ConnectorError.make(connector, new ConnectorError.Connect({ message }))
  }
  return ConnectorError.make(connector, new ConnectorError.Protocol({ message, retryable: false }))
}

/** TLS failures that retrying cannot fix: the peer does not speak TLS, or its certificate is refused. */
const tlsMismatch = /wrong version number|ERR_SSL_WRONG_VERSION_NUMBER|packet length too long|unknown protocol/i
const certificateCodes = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_TLS_CERT_ALTNAME_INVALID"
])

/**
 * A socket-level failure (dial, DNS, TLS) as a `Connect` error whose message starts with the system code
 * (`ECONNREFUSED: …`, `ENOTFOUND: …`) and whose `cause` is the native error. A TLS handshake with a peer that does
 * not speak TLS (`wss://`/`https://` against a plain server) or a refused certificate is not retryable, with a
 * message that says so instead of OpenSSL's.
 *
 * @since 0.2.0
 * @category errors
 */
export const socketError = (connector: string, cause: unknown): ConnectorError.ConnectorError => {
  const native = cause as { code?: string; message?: string }
  const code = native.code
  const text = String(native.message ?? cause)
  if (
    code === "ERR_SSL_WRONG_VERSION_NUMBER" ||
    ((code === "EPROTO" || code === undefined) && tlsMismatch.test(text))
  ) {
    return ConnectorError.make(
      connector,
      new ConnectorError.Connect({
        message:
          "TLS handshake failed: the server does not speak TLS (wrong version number); use ws:// or http:// for a plain server",
        cause,
        retryable: false
      })
    )
  }
  if (code !== undefined && certificateCodes.has(code)) {
    return ConnectorError.make(
      connector,
      new ConnectorError.Connect({ message: `TLS certificate refused (${code}): ${text}`, cause, retryable: false })
    )
  }
  const message = code === undefined || text.includes(code) ? text : `${code}: ${text}`
  return ConnectorError.make(connector, new ConnectorError.Connect({ message, cause }))
}

/**
 * The system code of an error's native cause (`ENOTFOUND`, `ECONNREFUSED`, …), when it has one: for callers that
 * decide from data (e.g. give up on an unknown host), not from messages.
 *
 * @since 0.2.0
 * @category errors
 */
export const systemCode = (error: ConnectorError.ConnectorError): string | undefined => {
  let cause: unknown = error.reason.cause
  for (let depth = 0; depth < 3 && typeof cause === "object" && cause !== null; depth++) {
    const code = (cause as { code?: unknown }).code
    if (typeof code === "string") return code
    cause = (cause as { cause?: unknown }).cause
  }
  return undefined
}

/**
 * A rejected `fetch` as a `Connect` error (`socketError` of undici's cause: the system code first, TLS
 * mismatches not retried).
 *
 * @since 0.1.0
 * @category http
 */
export const fetchError = (connector: string, cause: unknown): ConnectorError.ConnectorError => {
  const inner = (cause as { cause?: unknown }).cause
  return inner === undefined || inner === null
    ? ConnectorError.make(
        connector,
        new ConnectorError.Connect({ message: String((cause as Error).message ?? cause), cause })
      )
    : socketError(connector, inner)
}

// -----------------------------------------------------------------------------------------------------------------
// Decoding
// -----------------------------------------------------------------------------------------------------------------

/**
 * What to do with a payload the `Schema` rejects: fail the stream with a `Decode` error, or skip it (counted in
 * `streamemit_decode_skipped_total`).
 *
 * @since 0.1.0
 * @category decoding
 */
export type OnDecodeError = "fail" | "skip"

/**
 * Decodes JSON text with a `Schema` under a policy: one function per connector instance. On failure the session is
 * failed with a `Decode` error (its message starts with `where`, e.g. `channel "orders"`) or the skip is counted,
 * and the result is a failure: the caller emits nothing.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeJson = <A>(
  connector: string,
  schema: Schema.Decoder<A>,
  onError: OnDecodeError
): ((text: string, where: string | undefined, session: Session<never>) => Result.Result<A, void>) => {
  const decode = Schema.decodeUnknownResult(schema as Schema.Decoder<A, never>)
  return (text, where, session) => {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (error) {
      return reject(`invalid JSON: ${(error as Error).message}`, error)
    }
    const result = decode(json)
    if (Result.isSuccess(result)) return result as unknown as Result.Result<A, void>
    return reject(result.failure.message, result.failure)

    function reject(message: string, cause: unknown): Result.Result<A, void> {
      if (onError === "skip") session.skipped()
      else
        session.fail(
          ConnectorError.make(
            connector,
            new ConnectorError.Decode({ message: where === undefined ? message : `${where}: ${message}`, cause })
          )
        )
      return Result.failVoid
    }
  }
}

/**
 * Decodes JSON text with a `Schema` under a policy and pushes the value into a session (`decodeJson` for
 * connectors whose items are the payloads themselves).
 *
 * @since 0.1.0
 * @category decoding
 */
export const jsonDecoder = <A>(
  connector: string,
  schema: Schema.Decoder<A>,
  onError: OnDecodeError
): ((text: string, session: Session<A>) => boolean) => {
  const decode = decodeJson(connector, schema, onError)
  return (text, session) => {
    const result = decode(text, undefined, session)
    return Result.isSuccess(result) && session.emit(result.success)
  }
}
