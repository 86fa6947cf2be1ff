/**
 * The `StreamEmit` API of Effect 3 (`Stream.async`, `asyncEffect`, `asyncScoped`, `asyncPush`, `Emit`,
 * `EmitOpsPush`), brought back on Effect 4 with the same names, shapes and defaults: code written against the
 * StreamEmit guide ports by changing an import.
 *
 * Two Effect 4 traps do not exist here: a full buffer makes `async*` emits wait (Effect 4's
 * `Queue.offerUnsafe` drops silently), and the cleanup Effect returned by `async`'s register runs when the
 * stream ends, not at once.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Buffer } from "./internal/buffer.ts"
import { droppedListener, forkRegistration, fromBuffer, makePush } from "./internal/stream.ts"
import * as Metrics from "./Metrics.ts"

/**
 * The emit operations shared by `async`, `asyncEffect` and `asyncScoped`. Each returns a Promise that settles
 * once the values are in the stream's buffer: with the default `"suspend"` strategy it stays pending while the
 * buffer is full, so awaiting it is backpressure.
 *
 * @since 0.1.0
 * @category models
 */
export interface EmitOps<in R, in E, in A, out B> {
  /** Emits a chunk of values. */
  chunk(chunk: Chunk.Chunk<A>): Promise<B>
  /** Terminates the stream with a defect. */
  die<Err>(defect: Err): Promise<B>
  /** Terminates the stream with a defect made of `message`. */
  dieMessage(message: string): Promise<B>
  /** Emits the success value (without ending the stream, as in Effect 3) or fails with the cause. */
  done(exit: Exit.Exit<A, E>): Promise<B>
  /** Ends the stream once the values emitted before are delivered. */
  end(): Promise<B>
  /** Fails the stream with `e` once the values emitted before are delivered. */
  fail(e: E): Promise<B>
  /** Runs `effect` and emits its result, in order with the emits around it. */
  fromEffect(effect: Effect.Effect<A, E, R>): Promise<B>
  /** Runs `effect` and emits the chunk it returns, in order with the emits around it. */
  fromEffectChunk(effect: Effect.Effect<Chunk.Chunk<A>, E, R>): Promise<B>
  /** Terminates the stream with `cause`. */
  halt(cause: Cause.Cause<E>): Promise<B>
  /** Emits one value. */
  single(value: A): Promise<B>
}

/**
 * The callable emitter of `async`, `asyncEffect` and `asyncScoped`: call it with an Effect that succeeds with a
 * chunk to emit, fails with `Option.none()` to end, or with `Option.some(e)` to fail the stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface Emit<in R, in E, in A, out B> extends EmitOps<R, E, A, B> {
  (f: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>, R>): Promise<B>
}

/**
 * The synchronous emitter of `asyncPush`: `single`, `chunk` and `array` return `false` when a value was not
 * accepted (dropped by the strategy, evicted under `"sliding"`, or emitted after the end).
 *
 * @since 0.1.0
 * @category models
 */
export interface EmitOpsPush<in E, in A> {
  single(value: A): boolean
  chunk(chunk: Chunk.Chunk<A>): boolean
  array(values: ReadonlyArray<A>): boolean
  fail(error: E): void
  die<Err>(defect: Err): void
  dieMessage(message: string): void
  halt(cause: Cause.Cause<E>): void
  end(value?: unknown): void
  done(exit: Exit.Exit<A, E>): void
  /** Values dropped so far by the buffer strategy (an addition to Effect 3's interface). */
  readonly dropped: number
}

/**
 * The buffer of `async`, `asyncEffect` and `asyncScoped`, as in Effect 3: a number is a lossless buffer of that
 * many values (default 16); `"unbounded"`; or a size with a strategy.
 *
 * @since 0.1.0
 * @category models
 */
export type BufferSize =
  | number
  | "unbounded"
  | {
      readonly bufferSize?: number | undefined
      readonly strategy?: "dropping" | "sliding" | "suspend" | undefined
    }
  | undefined

/**
 * The buffer of `asyncPush`, as in Effect 3: unbounded unless given a size; a size alone drops the newest.
 * `name` labels the `streamemit_dropped_total` metric (an addition to Effect 3's options).
 *
 * @since 0.1.0
 * @category models
 */
export type PushOptions =
  | ({ readonly bufferSize: "unbounded" } & { readonly name?: string | undefined })
  | {
      readonly bufferSize?: number | undefined
      readonly strategy?: "dropping" | "sliding" | undefined
      readonly name?: string | undefined
    }
  | undefined

const DEFAULT_BUFFER = 16

const checkSize = (api: string, size: number): number => {
  if (!(Number.isInteger(size) && size >= 1)) {
    throw new RangeError(`StreamEmit.${api}: bufferSize must be a positive integer or "unbounded", got ${size}`)
  }
  return size
}

const resolveBufferSize = (
  api: string,
  bufferSize: BufferSize
): { readonly capacity: number; readonly strategy: "dropping" | "sliding" | "suspend" } => {
  if (bufferSize === "unbounded") return { capacity: Number.POSITIVE_INFINITY, strategy: "suspend" }
  if (bufferSize === undefined) return { capacity: DEFAULT_BUFFER, strategy: "suspend" }
  if (typeof bufferSize === "number") return { capacity: checkSize(api, bufferSize), strategy: "suspend" }
  const strategy = bufferSize.strategy ?? "suspend"
  if (strategy !== "dropping" && strategy !== "sliding" && strategy !== "suspend") {
    throw new RangeError(`StreamEmit.${api}: strategy must be "dropping", "sliding" or "suspend", got ${strategy}`)
  }
  return { capacity: checkSize(api, bufferSize.bufferSize ?? DEFAULT_BUFFER), strategy }
}

const resolvePushOptions = (
  options: PushOptions
): { readonly capacity: number; readonly strategy: "dropping" | "sliding" } => {
  if (options === undefined || options.bufferSize === "unbounded") {
    return { capacity: Number.POSITIVE_INFINITY, strategy: "dropping" }
  }
  if (options.bufferSize === undefined && options.strategy === undefined) {
    return { capacity: Number.POSITIVE_INFINITY, strategy: "dropping" }
  }
  const strategy = options.strategy ?? "dropping"
  if (strategy !== "dropping" && strategy !== "sliding") {
    throw new RangeError(`StreamEmit.asyncPush: strategy must be "dropping" or "sliding", got ${strategy}`)
  }
  return { capacity: checkSize("asyncPush", options.bufferSize ?? DEFAULT_BUFFER), strategy }
}

const unreachableOverflow = (): never => {
  throw new Error("StreamEmit: overflow is not a strategy of this API")
}

const resolved: Promise<void> = Promise.resolve()

type Entry<R, E, A> =
  | { readonly _tag: "Values"; readonly values: ReadonlyArray<A>; index: number; readonly resolve: () => void }
  | {
      readonly _tag: "Pull"
      readonly pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>, R>
      readonly resolve: () => void
    }
  | { readonly _tag: "End"; readonly cause: Cause.Cause<E> | undefined; readonly resolve: () => void }

/**
 * Emits in call order, waiting for room instead of dropping: values that do not fit, and everything after an
 * Effect still running, wait in `pending` and are moved into the buffer as the consumer takes.
 */
class LosslessEmitter<R, E, A> {
  private pending: Array<Entry<R, E, A>> = []
  private head = 0
  private running = false
  private finished = false
  private closed = false
  // Attached once the stream runs: the emitter exists first, so that its buffer is built telling it of room.
  private buffer!: Buffer<A, E>
  private run!: (effect: Effect.Effect<void, never, R>) => unknown

  attach(buffer: Buffer<A, E>, run: (effect: Effect.Effect<void, never, R>) => unknown): void {
    this.buffer = buffer
    this.run = run
  }

  single(value: A): Promise<void> {
    // The common case, without allocating: room in the buffer and nobody waiting ahead.
    if (
      this.head === this.pending.length &&
      !this.running &&
      !this.finished &&
      this.buffer.strategy === "suspend" &&
      this.buffer.isOpen &&
      this.buffer.room >= 1
    ) {
      this.buffer.pushOneUnchecked(value)
      return resolved
    }
    return this.values([value])
  }

  values(values: ReadonlyArray<A>): Promise<void> {
    if (this.finished || !this.buffer.isOpen) return resolved
    if (this.buffer.strategy !== "suspend") {
      // Lossy by the caller's choice; the buffer counts what it drops.
      this.buffer.offerAll(values)
      return resolved
    }
    if (this.head === this.pending.length && !this.running && this.buffer.room >= values.length) {
      this.buffer.pushUnchecked(values, 0, values.length)
      return resolved
    }
    return new Promise((resolve) => this.enqueue({ _tag: "Values", values, index: 0, resolve }))
  }

  pull(pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>, R>): Promise<void> {
    if (this.finished || !this.buffer.isOpen) return resolved
    return new Promise((resolve) => this.enqueue({ _tag: "Pull", pull, resolve }))
  }

  close(cause: Cause.Cause<E> | undefined): Promise<void> {
    if (this.finished || !this.buffer.isOpen) return resolved
    this.finished = true
    return new Promise((resolve) => this.enqueue({ _tag: "End", cause, resolve }))
  }

  private enqueue(entry: Entry<R, E, A>): void {
    this.pending.push(entry)
    this.process()
  }

  private shift(): void {
    this.head++
    if (this.head === this.pending.length) {
      this.pending = []
      this.head = 0
    }
  }

  process(): void {
    while (!this.running && this.head < this.pending.length) {
      const entry = this.pending[this.head]
      if (!this.buffer.isOpen) {
        entry.resolve()
        this.shift()
        continue
      }
      switch (entry._tag) {
        case "Values": {
          const room = this.buffer.room
          if (room <= 0) return
          const end = Math.min(entry.values.length, entry.index + room)
          this.buffer.pushUnchecked(entry.values, entry.index, end)
          entry.index = end
          if (end < entry.values.length) return
          entry.resolve()
          this.shift()
          break
        }
        case "End": {
          if (entry.cause === undefined) this.buffer.end()
          else this.buffer.failCause(entry.cause)
          entry.resolve()
          this.shift()
          break
        }
        case "Pull": {
          this.running = true
          this.run(
            Effect.onExit(entry.pull, (exit) => Effect.sync(() => this.settle(entry.resolve, exit))).pipe(Effect.ignore)
          )
          return
        }
      }
    }
  }

  /**
   * The stream is over (ended, failed, taken enough of, interrupted): every emit still waiting settles, as in
   * Effect 3, where the waiting offer was interrupted and the emit's Promise resolved. Later emits settle at once.
   */
  shutdown(): void {
    if (this.closed) return
    this.closed = true
    this.finished = true
    const pending = this.pending
    const head = this.head
    this.pending = []
    this.head = 0
    for (let i = head; i < pending.length; i++) pending[i].resolve()
  }

  private settle(resolve: () => void, exit: Exit.Exit<Chunk.Chunk<A>, Option.Option<E>>): void {
    this.running = false
    if (this.closed) {
      resolve()
      return
    }
    // The Pull entry becomes what it produced, in the same place in line.
    let next: Entry<R, E, A> | undefined
    if (Exit.isSuccess(exit)) {
      next = { _tag: "Values", values: Chunk.toReadonlyArray(exit.value), index: 0, resolve }
    } else if (Cause.hasInterruptsOnly(exit.cause)) {
      next = undefined
    } else {
      const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
      if (failure !== undefined && Option.isNone(failure.error)) {
        next = { _tag: "End", cause: undefined, resolve }
      } else {
        next = { _tag: "End", cause: Cause.map(exit.cause, (error) => (error as Option.Some<E>).value), resolve }
      }
    }
    if (next === undefined) {
      resolve()
      this.shift()
    } else {
      if (next._tag === "End" && !this.finished) {
        this.finished = true
        // Everything emitted after the end is ignored, as in Effect 3.
        for (let i = this.head + 1; i < this.pending.length; i++) this.pending[i].resolve()
        this.pending.length = this.head + 1
      }
      this.pending[this.head] = next
    }
    this.process()
  }
}

const makeEmit = <R, E, A>(emitter: LosslessEmitter<R, E, A>): Emit<R, E, A, void> => {
  const emit = ((pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>, R>) => emitter.pull(pull)) as Emit<R, E, A, void>
  const ops: EmitOps<R, E, A, void> = {
    single: (value) => emitter.single(value),
    chunk: (chunk) => emitter.values(Chunk.toReadonlyArray(chunk)),
    fromEffect: (effect) =>
      emitter.pull(Effect.mapBoth(effect, { onFailure: Option.some, onSuccess: (a: A) => Chunk.of(a) })),
    fromEffectChunk: (effect) => emitter.pull(Effect.mapError(effect, Option.some)),
    done: (exit) => (Exit.isSuccess(exit) ? emitter.values([exit.value]) : emitter.close(exit.cause)),
    end: () => emitter.close(undefined),
    fail: (error) => emitter.close(Cause.fail(error)),
    die: (defect) => emitter.close(Cause.die(defect)),
    dieMessage: (message) => emitter.close(Cause.die(new Error(message))),
    halt: (cause) => emitter.close(cause)
  }
  return Object.assign(emit, ops)
}

/**
 * Sets up a lossless emitter whose Effects run in the stream's context and die with its scope; when the scope
 * closes, the emits still waiting for room settle.
 */
const lossless = <R, E, A>(emitter: LosslessEmitter<R, E, A>, buffer: Buffer<A, E>, scope: Scope.Scope) =>
  Effect.flatMap(Scope.provide(FiberSet.makeRuntime<R, void, never>(), scope), (run) => {
    emitter.attach(buffer, run)
    return Effect.as(
      Scope.addFinalizer(
        scope,
        Effect.sync(() => emitter.shutdown())
      ),
      emitter
    )
  })

/**
 * Creates a stream from an asynchronous callback that can be called multiple times. The Effect that `register`
 * may return is the cleanup: it runs exactly once, when the stream ends, fails or is interrupted.
 *
 * Default buffer: 16 values, lossless (a full buffer makes the emit's Promise wait).
 *
 * @since 0.1.0
 * @category constructors
 */
export const async = <A, E = never, R = never>(
  register: (emit: Emit<R, E, A, void>) => Effect.Effect<void, never, R> | void,
  bufferSize?: BufferSize
): Stream.Stream<A, E, R> =>
  fromBufferOptions<A, E, R>("async", bufferSize, (buffer, scope, emitter) =>
    Effect.flatMap(lossless<R, E, A>(emitter, buffer, scope), (emitter) =>
      Effect.suspend(() => {
        const cleanup = register(makeEmit(emitter))
        if (!Effect.isEffect(cleanup)) return Effect.void
        return Effect.contextWith((context: Context.Context<R>) =>
          Scope.addFinalizer(scope, Effect.provideContext(cleanup, context))
        )
      })
    )
  )

/**
 * Creates a stream from an asynchronous callback that can be called multiple times. `register` is an Effect:
 * its failure fails the stream (after what was emitted before it).
 *
 * @since 0.1.0
 * @category constructors
 */
export const asyncEffect = <A, E = never, R = never>(
  register: (emit: Emit<R, E, A, void>) => Effect.Effect<unknown, E, R>,
  bufferSize?: BufferSize
): Stream.Stream<A, E, R> => registered<A, E, R>("asyncEffect", register, bufferSize)

/**
 * Like `asyncEffect`, with the stream's `Scope` provided to `register`: resources it acquires are released
 * when the stream ends.
 *
 * @since 0.1.0
 * @category constructors
 */
export const asyncScoped = <A, E = never, R = never>(
  register: (emit: Emit<R, E, A, void>) => Effect.Effect<unknown, E, R | Scope.Scope>,
  bufferSize?: BufferSize
): Stream.Stream<A, E, Exclude<R, Scope.Scope>> => registered<A, E, R>("asyncScoped", register, bufferSize)

/**
 * `asyncEffect` and `asyncScoped`: the registration runs forked in the stream's Scope (which `asyncScoped` exposes
 * in its type; `asyncEffect`'s register simply does not ask for it).
 */
const registered = <A, E, R>(
  api: string,
  register: (emit: Emit<R, E, A, void>) => Effect.Effect<unknown, E, R | Scope.Scope>,
  bufferSize: BufferSize
): Stream.Stream<A, E, Exclude<R, Scope.Scope>> =>
  fromBufferOptions<A, E, R>(api, bufferSize, (buffer, scope, emitter) =>
    Effect.flatMap(lossless<R, E, A>(emitter, buffer, scope), (emitter) =>
      forkRegistration(
        buffer,
        scope,
        Effect.suspend(() => register(makeEmit(emitter)))
      )
    )
  )

/**
 * Creates a stream from a push source through synchronous emits. Unbounded by default, as in Effect 3; with a
 * `bufferSize` it drops the newest (`"dropping"`, the default) or the oldest (`"sliding"`) when full. Every drop
 * makes the emit return `false`, is counted in `emit.dropped`, and in the `streamemit_dropped_total` metric.
 *
 * @since 0.1.0
 * @category constructors
 */
export const asyncPush = <A, E = never, R = never>(
  register: (emit: EmitOpsPush<E, A>) => Effect.Effect<unknown, E, R | Scope.Scope>,
  options?: PushOptions
): Stream.Stream<A, E, Exclude<R, Scope.Scope>> =>
  suspendDie(() => {
    const { capacity, strategy } = resolvePushOptions(options)
    const dropped = Metrics.dropped("StreamEmit", options?.name ?? "asyncPush")
    return Effect.map(Effect.context<never>(), (context) =>
      fromBuffer<A, E, R>(
        {
          capacity,
          strategy,
          hardCap: capacity,
          overflow: unreachableOverflow,
          listener: droppedListener(dropped, context)
        },
        (buffer, scope) =>
          forkRegistration(
            buffer,
            scope,
            Effect.suspend(() => register(makePush(buffer)))
          )
      )
    )
  })

/** A lossless emitter over a buffer built for it: told of every drop (metrics) and of room (waiting emits). */
const fromBufferOptions = <A, E, R>(
  api: string,
  bufferSize: BufferSize,
  setup: (
    buffer: Buffer<A, E>,
    scope: Scope.Scope,
    emitter: LosslessEmitter<R, E, A>
  ) => Effect.Effect<unknown, never, R | Scope.Scope>
): Stream.Stream<A, E, Exclude<R, Scope.Scope>> =>
  suspendDie(() => {
    const { capacity, strategy } = resolveBufferSize(api, bufferSize)
    const dropped = Metrics.dropped("StreamEmit", api)
    return Effect.map(Effect.context<never>(), (context) => {
      const emitter = new LosslessEmitter<R, E, A>()
      return fromBuffer<A, E, R>(
        {
          capacity,
          strategy,
          hardCap: capacity,
          overflow: unreachableOverflow,
          listener: {
            onDrop: (count) => dropped.updateUnsafe(count, context),
            onSpace: () => emitter.process()
          }
        },
        (buffer, scope) => setup(buffer, scope, emitter)
      )
    })
  })

// Invalid options are programmer errors: the stream dies at once with a message naming the option.
const suspendDie = <A, E, R>(
  make: () => Effect.Effect<Stream.Stream<A, E, R>>
): Stream.Stream<A, E, Exclude<R, Scope.Scope>> => Stream.unwrap(Effect.suspend(make)) as any
