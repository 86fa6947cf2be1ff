/**
 * Turns a `Buffer` fed by a registration into a `Stream`, in the stream's own Scope.
 *
 * @internal
 */
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Metric from "effect/Metric"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Buffer, type BufferListener, type BufferOptions } from "./buffer.ts"

/** A buffer listener that counts drops in `dropped` (the buffer of a plain push stream). @internal */
export const droppedListener = (dropped: Metric.Counter<number>, context: Context.Context<never>): BufferListener => ({
  onDrop: (count) => dropped.updateUnsafe(count, context),
  onSpace: () => {}
})

/** @internal */
export const fromBuffer = <A, E, R>(
  options: BufferOptions<E>,
  setup: (buffer: Buffer<A, E>, scope: Scope.Scope) => Effect.Effect<unknown, never, R | Scope.Scope>
): Stream.Stream<A, E, Exclude<R, Scope.Scope>> =>
  Stream.fromChannel(
    Channel.fromTransform((_upstream, scope) =>
      Effect.suspend(() => {
        const buffer = new Buffer<A, E>(options)
        // Added first, so it runs last: user cleanups still see an open buffer.
        return Scope.addFinalizer(
          scope,
          Effect.sync(() => buffer.shutdown())
        ).pipe(
          Effect.andThen(Scope.provide(setup(buffer, scope), scope)),
          Effect.as(buffer.take as Effect.Effect<Arr.NonEmptyReadonlyArray<A>, E | Cause.Done>)
        )
      })
    )
  ) as any

/**
 * Runs an effectful registration in the stream's scope without blocking the consumer: a registration that
 * waits for room (lossless emits) must not wait for a consumer that has not started yet. Its failure fails the
 * stream after what was already emitted. The registration's fiber then stays alive until the stream ends, so
 * fibers it forks with `Effect.forkChild` live as long as the stream (as they did in Effect 3, where register
 * ran in the consuming fiber).
 *
 * @internal
 */
export const forkRegistration = <A, E, R>(
  buffer: Buffer<A, E>,
  scope: Scope.Scope,
  register: Effect.Effect<unknown, E, R>
): Effect.Effect<unknown, never, R> =>
  register.pipe(
    Effect.andThen(Effect.never),
    Effect.catchCause((cause) =>
      Effect.sync(() => {
        if (!Cause.hasInterruptsOnly(cause)) buffer.failCause(cause)
      })
    ),
    Effect.forkIn(scope, { startImmediately: true })
  )

/**
 * The push emitter over a buffer: `EmitOpsPush` plus flow control and counts (the `Overflow.Sink`).
 *
 * @internal
 */
export const makePush = <E, A>(buffer: Buffer<A, E>) => ({
  single: (value: A): boolean => buffer.offer(value),
  array: (values: ReadonlyArray<A>): boolean => buffer.offerAll(values),
  chunk: (chunk: Chunk.Chunk<A>): boolean => buffer.offerAll(Chunk.toReadonlyArray(chunk)),
  done: (exit: Exit.Exit<A, E>): void => {
    if (!buffer.isOpen) return
    if (Exit.isSuccess(exit)) {
      buffer.offer(exit.value)
      buffer.end()
    } else {
      buffer.failCause(exit.cause)
    }
  },
  end: (): void => {
    buffer.end()
  },
  fail: (error: E): void => {
    buffer.failCause(Cause.fail(error))
  },
  die: (defect: unknown): void => {
    buffer.failCause(Cause.die(defect))
  },
  dieMessage: (message: string): void => {
    buffer.failCause(Cause.die(new Error(message)))
  },
  halt: (cause: Cause.Cause<E>): void => {
    buffer.failCause(cause)
  },
  flowControl: (control: { readonly pause: () => void; readonly resume: () => void }): void =>
    buffer.setFlowControl(control),
  get dropped(): number {
    return buffer.dropped
  },
  get depth(): number {
    return buffer.size
  },
  get delivered(): number {
    return buffer.delivered
  },
  get paused(): boolean {
    return buffer.isPaused
  }
})
