/**
 * The runtime of one connector handle: the connection loop (connect, reconnect with the schedule, `Gap`, resync,
 * live), the sessions drivers feed, the liveness watchdog, lifecycle publication and the handle's streams.
 * `Connector.make` is its only entry point.
 *
 * The loop runs in a fiber only while it has work: connecting, resyncing, waiting to retry. A live connection holds
 * no fiber (a fiber, its stack and its generators cost a quiet connection about 3 KB): its resources stay in a
 * Scope of their own, and the end or failure its session reports starts the loop again.
 *
 * Over 500 lines on purpose: the connection loop, the session and the watchdog share one handle's state; the
 * buffer, the lifecycle hub and the decoding are modules of their own.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as PubSub from "effect/PubSub"
import type * as Pull from "effect/Pull"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import type * as Connector from "../Connector.ts"
import * as ConnectorError from "../ConnectorError.ts"
import type * as Driver from "../Driver.ts"
import * as Lifecycle from "../Lifecycle.ts"
import * as Metrics from "../Metrics.ts"
import * as Overflow from "../Overflow.ts"
import { Buffer, type BufferListener } from "./buffer.ts"
import { type Deadline, type Deadlines, deadlinesOf } from "./deadlines.ts"
import { SessionState } from "./session.ts"

/** An event with its place in the sequence of published events. */
interface Sequenced {
  readonly seq: number
  readonly event: Lifecycle.Event
}

export class Machine<Item> implements BufferListener {
  readonly buffer: Buffer<Item | Lifecycle.Event, ConnectorError.ConnectorError>
  readonly options: Connector.Resolved<Item>
  readonly metrics: Metrics.ConnectorMetrics
  private readonly clock: Clock.Clock
  /** The watchdogs' shared sleeper (one per clock). */
  readonly deadlines: Deadlines
  reconnectFloor: Duration.Duration = Duration.zero
  reconnects = 0
  status: Lifecycle.Status = new Lifecycle.Connecting({ attempt: 1 })
  /** What the live connection's `connect` returned (`handle.connection`, `awaitConnection`); `undefined` otherwise. */
  current: unknown = undefined
  /** When the current connection went live (announced, resynced, delivering): `undefined` until then. */
  liveAt: number | undefined = undefined
  /** Events published so far: an `events` subscriber skips those its first status already covers. */
  published = 0
  /** Called on every status change (`awaitConnection`); a waiter returns `true` when it is done. */
  readonly statusWaiters = new Set<() => boolean>()
  /** Made on the first `events` subscription: most handles are only read through `messages`. */
  private pubsub: PubSub.PubSub<Sequenced> | undefined = undefined
  private readonly context: Parameters<Metrics.ConnectorMetrics["messages"]["updateUnsafe"]>[1]
  /** The session of the latest attempt (its counts move to the metrics per batch). */
  private session: SessionState<Item> | undefined = undefined

  // The connection loop's state.
  private readonly driver: Driver.Driver<unknown, Item>
  /** A tracing backend is installed (not Effect's `nativeTracer`, which exports nothing). */
  readonly tracing: boolean
  /** The schedule's state, made at the first failure: most connections never need it, and it costs closures. */
  private step:
    | ((
        now: number,
        input: ConnectorError.ConnectorError
      ) => Pull.Pull<[unknown, Duration.Duration], ConnectorError.ConnectorError, unknown>)
    | undefined
  /**
   * When the source was last live: the downtime of the next Gap counts from there, across attempts that connected
   * but failed before going live (e.g. in onResync). A restored checkpoint: the first connection is a reconnect.
   */
  private downSince: number | undefined
  private attempt = 0
  /** The live connection, held without a fiber until its session settles. */
  private live: Live<Item> | undefined = undefined
  /** The loop's fiber while it has work (connecting, resyncing, waiting to retry). */
  private running: Fiber.Fiber<void> | undefined = undefined
  private closing = false

  constructor(
    driver: Driver.Driver<unknown, Item>,
    options: Connector.Resolved<Item>,
    clock: Clock.Clock,
    context: Machine<Item>["context"]
  ) {
    this.driver = driver
    this.tracing = Context.get(context, Tracer.Tracer) !== Tracer.nativeTracer
    this.downSince = options.lastSeenAt
    this.options = options
    this.clock = clock
    this.deadlines = deadlinesOf(clock, context)
    this.context = context
    this.metrics = Metrics.forConnector(options.connector, options.name)
    const policy = options.policy
    // The machine owns its buffer: drops go to its metrics, and counts move to them as the consumer takes.
    this.buffer = new Buffer<Item | Lifecycle.Event, ConnectorError.ConnectorError>({
      capacity: policy.bufferSize,
      strategy: policy.strategy,
      hardCap: policy.hardCap,
      overflow: Overflow.overflowError(options.connector, policy),
      isMarked: Lifecycle.isEvent,
      clock,
      listener: this
    })
  }

  now(): number {
    return this.clock.currentTimeMillisUnsafe()
  }

  /** The buffer dropped values (its listener). */
  onDrop(count: number): void {
    this.metrics.dropped.updateUnsafe(count, this.context)
  }

  /** The consumer took (the buffer's listener): counts move to the metrics per batch. */
  onSpace(): void {
    this.flushCounts()
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
    // On the watchdog's clock: time paused on an earlier connection must not push this one's deadline away.
    this.session = new SessionState(this, attempt, this.activeNow())
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
    // The state changes before anyone is told: a subscriber may run within the publish and read `status`.
    if (event._tag !== "Gap") this.status = event
    this.published++
    if (this.pubsub !== undefined) PubSub.publishUnsafe(this.pubsub, { seq: this.published, event })
    if (event._tag === "Gap") return
    for (const waiter of this.statusWaiters) if (waiter()) this.statusWaiters.delete(waiter)
  }

  /** The events' PubSub, made on first use (unbounded: a subscriber that reads slowly misses nothing). */
  eventsPubSub(): PubSub.PubSub<Sequenced> {
    if (this.pubsub === undefined) {
      this.pubsub = Effect.runSync(PubSub.unbounded<Sequenced>())
      // A subscription after the close finds it shut down, as it would have found the one made at the start.
      if (this.eventsClosed) Effect.runSync(PubSub.shutdown(this.pubsub))
    }
    return this.pubsub
  }

  private eventsClosed = false

  shutdownEvents(): Effect.Effect<void> {
    this.eventsClosed = true
    return this.pubsub === undefined ? Effect.void : PubSub.shutdown(this.pubsub)
  }

  update(metric: { readonly updateUnsafe: (n: number, context: Machine<Item>["context"]) => void }, n: number) {
    metric.updateUnsafe(n, this.context)
  }

  /** Runs the connection loop in a fiber, from a live connection that just ended or from a first attempt. */
  run(ended: Live<Item> | undefined): void {
    const fiber = Effect.runForkWith(this.context)(
      this.loop(ended).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.sync(() => this.buffer.failCause(cause as never))
        )
      )
    )
    if (fiber.pollUnsafe() !== undefined) return
    this.running = fiber
    fiber.addObserver(() => {
      if (this.running === fiber) this.running = undefined
    })
  }

  /** A session settled: if it is the live connection's, release it and go on with the loop, in a fiber again. */
  settled(session: SessionState<Item>): void {
    const live = this.live
    if (live === undefined || live.session !== session || this.closing) return
    this.live = undefined
    this.run(live)
  }

  /**
   * Closing the handle: the loop's fiber is interrupted (an attempt in progress releases what it acquired), or the
   * live connection's Scope closed; then `Closed` and the end of the streams.
   */
  shutdown(): Effect.Effect<void> {
    this.closing = true
    const fiber = this.running
    const live = this.live
    this.live = undefined
    return Effect.andThen(
      fiber === undefined ? Effect.void : Fiber.interrupt(fiber),
      live === undefined ? Effect.void : Scope.close(live.scope, Exit.interrupt())
    ).pipe(
      Effect.andThen(
        Effect.suspend(() => {
          if (this.status._tag !== "Closed") this.publishOutOfBand(new Lifecycle.Closed({ error: undefined }))
          this.buffer.shutdown()
          return this.shutdownEvents()
        })
      )
    )
  }

  private close(error: ConnectorError.ConnectorError | undefined): Effect.Effect<void> {
    return Effect.sync(() => {
      this.publish(new Lifecycle.Closed({ error }))
      if (error === undefined) this.buffer.end()
      else this.buffer.failCause(Cause.fail(error))
    })
  }

  /** The loop: attempts, the reconnect schedule, and the hand-over of a connection that went live. */
  private loop(ended: Live<Item> | undefined): Effect.Effect<void, unknown> {
    const core = this
    const options = this.options
    return Effect.gen(function* () {
      let exit = ended === undefined ? undefined : yield* release(ended)
      for (;;) {
        if (exit === undefined) {
          const attempt = ++core.attempt
          core.publish(new Lifecycle.Connecting({ attempt }))
          core.liveAt = undefined
          const scope = Scope.makeUnsafe()
          const established = yield* Effect.exit(
            Effect.onExit(Scope.provide(establish(core.driver, core, attempt, core.downSince), scope), (exit) =>
              Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void
            )
          )
          if (Exit.isFailure(established)) exit = established as Exit.Exit<void, ConnectorError.ConnectorError>
          else {
            const session = established.value
            // Live: the fiber ends here; the session's end or failure runs the loop again (`settled`).
            if (session.ended === undefined) {
              core.live = { scope, session }
              return
            }
            exit = yield* release({ scope, session })
          }
        }
        const attempt = core.attempt
        const liveAt = core.liveAt
        if (Exit.isSuccess(exit)) return yield* core.close(undefined)
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
        exit = undefined
        core.update(core.metrics.errors(error.reason._tag), 1)
        if (liveAt !== undefined) {
          // A live connection was lost: the next one opens with a Gap.
          core.downSince = core.now()
          // A fresh schedule for the outage of a connection that was stable.
          if (core.downSince - liveAt >= Duration.toMillis(options.stableAfter)) core.step = undefined
        }
        const schedule = options.schedule
        if (schedule === undefined || !error.isRetryable) {
          core.publish(new Lifecycle.Disconnected({ attempt, error, retryIn: undefined }))
          return yield* core.close(error)
        }
        if (core.step === undefined) core.step = yield* Schedule.toStep(schedule)
        const next = yield* Effect.result(core.step(core.now(), error))
        if (Result.isFailure(next)) {
          core.publish(new Lifecycle.Disconnected({ attempt, error, retryIn: undefined }))
          return yield* core.close(error)
        }
        const retryIn = Duration.max(next.success[1], core.reconnectFloor)
        core.publish(new Lifecycle.Disconnected({ attempt, error, retryIn }))
        core.reconnects++
        core.update(core.metrics.reconnects, 1)
        yield* Effect.sleep(retryIn)
      }
    })
  }
}

/** A live connection: its resources, in a Scope of their own, and the session that reports its end. */
interface Live<Item> {
  readonly scope: Scope.Closeable
  readonly session: SessionState<Item>
}

/** Closes a live connection's Scope with the outcome its session reported; returns that outcome. */
const release = <Item>({
  scope,
  session
}: Live<Item>): Effect.Effect<Exit.Exit<void, ConnectorError.ConnectorError>> => {
  const ended = session.ended!
  const exit: Exit.Exit<void, ConnectorError.ConnectorError> = ended._tag === "End" ? Exit.void : Exit.fail(ended.error)
  return Effect.as(Scope.close(scope, exit), exit)
}

const asConnectorError = (
  connector: string,
  cause: Cause.Cause<unknown>
): ConnectorError.ConnectorError | undefined => {
  const failure = cause.reasons.find((reason) => reason._tag === "Fail")
  if (failure !== undefined && ConnectorError.isConnectorError(failure.error)) return failure.error
  if (failure !== undefined) {
    // A driver failed with something that is not a ConnectorError: say so rather than guess a reason.
    return ConnectorError.make(
      connector,
      new ConnectorError.Unknown({ message: String(failure.error), cause: failure.error, retryable: true })
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
    new ConnectorError.Unknown({
      message: `died: ${defect instanceof Error ? defect.message : String(defect)}`,
      cause: defect
    })
  )
}

/**
 * Sleeps until `millis` have passed on the `activeNow` clock: time while our buffer holds the source paused
 * does not count. Looks at least every quarter of `millis`, so a resume is noticed soon.
 */
const activeSleep = <Item>(core: Machine<Item>, millis: number): Effect.Effect<void> =>
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
  core: Machine<Item>,
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
const replay = <Item>(core: Machine<Item>, items: ReadonlyArray<Item>): Effect.Effect<void> => {
  const buffer = core.buffer
  let from = 0
  const loop: Effect.Effect<void> = Effect.suspend(() => {
    from += buffer.pushReplay(items, from)
    if (from >= items.length || !buffer.isOpen) return Effect.void
    return Effect.flatMap(buffer.awaitRoom(), () => loop)
  })
  return loop
}

/**
 * A span around `effect` when a tracing backend is installed. Effect's own `nativeTracer` exports nothing, and the
 * connect span stays referenced as long as the connection (its context is kept for the driver's release): 0.5 KB a
 * quiet connection would carry for no reader. No stack trace: it would point into this module.
 */
const traced =
  <Item>(core: Machine<Item>, name: string, options: Tracer.SpanOptionsNoTrace) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Tracer.ParentSpan>> =>
    core.tracing
      ? effect.pipe(Effect.withSpan(name, options, { captureStackTrace: false }))
      : (effect as Effect.Effect<A, E, Exclude<R, Tracer.ParentSpan>>)

/**
 * Establishes one connection: connect, `Connected`, the reconnect's `Gap` and resync, then live with its
 * watchdog. Returns its session; the connection's resources stay in the Scope until the session settles.
 */
const establish = <Conn, Item>(
  driver: Driver.Driver<Conn, Item>,
  core: Machine<Item>,
  attempt: number,
  downSince: number | undefined
): Effect.Effect<SessionState<Item>, ConnectorError.ConnectorError, Scope.Scope> =>
  Effect.gen(function* () {
    const { options } = core
    const session = core.newSession(attempt)
    // One finalizer for the connection's own teardown (each one costs a quiet connection its closures and keys).
    let connected = false
    let watchdog: Watchdog<Conn, Item> | undefined
    // The teardown is built when it runs: a live connection holds one closure for it.
    yield* Scope.addFinalizerExit(yield* Scope.Scope, () =>
      Effect.andThen(
        watchdog === undefined ? Effect.void : watchdog.stop(),
        Effect.sync(() => {
          if (connected) core.update(core.metrics.connected, 0)
          core.endSession(session)
        })
      )
    )
    // Messages of a connection that is not live yet (Connected, Gap, resync) wait behind a gate: they obey the
    // overflow policy (a full buffer pauses the source, or drops and counts) and follow those events.
    const ungated = typeof driver.ungated === "function" ? driver.ungated(attempt) : driver.ungated === true
    if (!ungated) core.buffer.closeGate()
    // A failure the driver reports while connecting ends the attempt at once: a reply that never comes (a
    // redirected subscribe, a half-open socket) must not hold it until the connect timeout. Time while the
    // consumer holds the source paused (an ungated watcher's initial scan) does not count against the timeout.
    // A span per attempt (not per connection: a connection can live for days): a trace shows each outage as its
    // failed attempts, with the reason, and the attempt that ended it.
    const attributes = {
      "streamemit.connector": options.connector,
      "streamemit.name": options.name,
      "streamemit.attempt": attempt
    }
    const connect = activeTimeout(
      core,
      Effect.raceFirst(driver.connect(session), session.awaitFailure()),
      options.connectTimeout,
      () => connectTimeoutError(options.connector, options.connectTimeout)
    )
    const conn = yield* core.tracing
      ? connect.pipe(
          Effect.onExit((exit) =>
            Effect.annotateCurrentSpan(
              "streamemit.outcome",
              Exit.isSuccess(exit)
                ? "connected"
                : (asConnectorError(options.connector, exit.cause)?.reason._tag ?? "interrupted")
            )
          ),
          traced(core, "streamemit.connect", { attributes, kind: "client" })
        )
      : connect
    const connectedAt = core.now()
    core.current = conn
    core.reconnectFloor = Duration.zero
    core.update(core.metrics.connected, 1)
    connected = true
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
            (items) =>
              core.tracing
                ? Effect.andThen(Effect.annotateCurrentSpan("streamemit.replayed", items.length), replay(core, items))
                : replay(core, items)
          ),
          session.awaitFailure()
        ).pipe(
          traced(core, "streamemit.resync", {
            attributes: { ...attributes, "streamemit.downtime_ms": Duration.toMillis(downtime) }
          })
        )
      }
    }
    core.liveAt = core.now()
    session.goLive()
    core.buffer.openGate()
    watchdog = yield* liveness(driver, core, session, conn)
    return session
  })

/**
 * The watchdog of one connection; it reports death through `session.fail`. It runs on the `activeNow` clock:
 * while our buffer holds the transport paused (a slow consumer), the silence is ours, so it neither counts nor
 * probes (a paused socket cannot read the answer). A dead peer is then found by TCP keepalive (on in the ws and
 * pg drivers, and by default in undici and ioredis), or once the consumer catches up. It is a deadline on the
 * clock's shared sleeper, not a fiber: traffic is stamped, so one wake-up per interval (or timeout) is enough.
 */
const liveness = <Conn, Item>(
  driver: Driver.Driver<Conn, Item>,
  core: Machine<Item>,
  session: SessionState<Item>,
  conn: Conn
): Effect.Effect<Watchdog<Conn, Item> | undefined> => {
  const settings = core.options.liveness
  if (settings === undefined) return Effect.undefined
  return Effect.map(Effect.context<never>(), (context) => {
    const watchdog = new Watchdog(core, session, conn, driver, settings, context)
    watchdog.check()
    return watchdog
  })
}

/** One connection's watchdog: an object with one bound callback, not a closure per step (it lives as long). */
class Watchdog<Conn, Item> {
  private deadline: Deadline | undefined = undefined
  private probing: Fiber.Fiber<unknown, unknown> | undefined = undefined
  private readonly core: Machine<Item>
  private readonly session: SessionState<Item>
  private readonly conn: Conn
  private readonly driver: Driver.Driver<Conn, Item>
  private readonly settings: NonNullable<Connector.Resolved<Item>["liveness"]>
  private readonly context: Context.Context<never>
  private readonly onDeadline = (): void => {
    this.deadline = undefined
    this.check()
  }

  constructor(
    core: Machine<Item>,
    session: SessionState<Item>,
    conn: Conn,
    driver: Driver.Driver<Conn, Item>,
    settings: Watchdog<Conn, Item>["settings"],
    context: Context.Context<never>
  ) {
    this.core = core
    this.session = session
    this.conn = conn
    this.driver = driver
    this.settings = settings
    this.context = context
  }

  private arm(wait: number): void {
    this.deadline = this.core.deadlines.add(this.core.now() + Math.max(1, wait), this.onDeadline)
  }

  check(): void {
    const { core, session, settings } = this
    if (!session.active) return
    const connector = core.options.connector
    // Called as the driver's method: a driver may be a class.
    const driver = this.driver
    if (driver.probe === undefined) {
      // Idle timer: any traffic counts; silence for `timeout` is death.
      const wait = session.lastSeen() + Duration.toMillis(settings.timeout) - core.activeNow()
      if (wait > 0) this.arm(wait)
      else
        session.fail(livenessError(connector, `no data for ${Duration.format(settings.timeout)}: connection stalled`))
      return
    }
    const wait = session.lastSeen() + Duration.toMillis(settings.interval) - core.activeNow()
    if (wait > 0) {
      this.arm(wait)
      return
    }
    this.probing = Effect.runForkWith(this.context)(
      Effect.scoped(
        activeTimeout(core, driver.probe(this.conn), settings.timeout, () =>
          livenessError(connector, `liveness probe unanswered within ${Duration.format(settings.timeout)}`)
        )
      ).pipe(
        Effect.result,
        Effect.flatMap((result) =>
          Effect.sync(() => {
            this.probing = undefined
            if (Result.isFailure(result)) session.fail(result.failure)
            else {
              session.alive()
              this.check()
            }
          })
        )
      )
    )
  }

  /** Run by the connection's finalizer. */
  stop(): Effect.Effect<void> {
    if (this.deadline !== undefined) this.core.deadlines.cancel(this.deadline)
    const fiber = this.probing
    return fiber === undefined ? Effect.void : Fiber.interrupt(fiber)
  }
}

/**
 * Builds the handle: connects in the background of the current Scope and keeps the connection alive until the
 * Scope closes or the connector ends for good.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Conn, Item>(
  driver: Driver.Driver<Conn, Item>,
  options: Connector.Resolved<Item>
): Effect.Effect<Connector.Handle<Conn, Item>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    // Unbounded: a subscriber that reads slowly misses nothing, and lifecycle events are few.
    const core = new Machine<Item>(driver as Driver.Driver<unknown, Item>, options, clock, context)
    const buffer = core.buffer

    yield* Scope.addFinalizerExit(yield* Scope.Scope, () => core.shutdown())
    core.run(undefined)

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
      Effect.map(
        Effect.suspend(() => PubSub.subscribe(core.eventsPubSub())),
        (subscription) => {
          // The status now stands for every event published so far; the subscription may hold some of those.
          const seen = core.published
          return Stream.concat(
            Stream.succeed<Lifecycle.Event>(core.status),
            Stream.fromSubscription(subscription).pipe(
              Stream.filter((sequenced) => sequenced.seq > seen),
              Stream.map((sequenced) => sequenced.event)
            )
          )
        }
      )
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
      statusChanges: Stream.filter(events, (event): event is Lifecycle.Status => event._tag !== "Gap"),
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
