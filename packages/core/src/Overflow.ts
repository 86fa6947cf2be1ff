/**
 * Overflow policies: what a push stream does when its source is faster than its consumer. Memory stays bounded
 * and nothing is lost silently — the source is paused, or every drop is counted, or the stream fails with a
 * typed `Overflow` error.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ConnectorError from "./ConnectorError.ts"
import { droppedListener, forkRegistration, fromBuffer, makePush } from "./internal/stream.ts"
import * as Metrics from "./Metrics.ts"
import type { EmitOpsPush } from "./StreamEmit.ts"

/**
 * - `"suspend"`: lossless. The source is paused at `bufferSize` and resumed once the consumer has taken what is
 *   buffered. The batch that crosses `bufferSize` is taken whole (it was read before the pause); what arrives
 *   after the pause was asked for, or from a source that cannot pause, is kept up to `hardCap`, past which the
 *   stream fails with `Overflow`.
 * - `"dropping"`: drops the newest value when full; counted.
 * - `"sliding"`: drops the oldest value when full; counted.
 * - `"fail"`: fails the stream with `Overflow` when full.
 *
 * @since 0.1.0
 * @category models
 */
export type Strategy = "suspend" | "dropping" | "sliding" | "fail"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Values held between source and consumer. Default: the connector's (1024 for most). */
  readonly bufferSize?: number | undefined
  /** Default: the connector's, documented in its README. */
  readonly strategy?: Strategy | undefined
  /**
   * `"suspend"` only: the most values held once the source was asked to pause (what it still delivers), or from a
   * source that cannot pause. Default `4 × bufferSize`.
   */
  readonly hardCap?: number | undefined
}

/**
 * Options resolved once: every field present and valid.
 *
 * @since 0.1.0
 * @category models
 */
export interface Policy {
  readonly bufferSize: number
  readonly strategy: Strategy
  readonly hardCap: number
}

/**
 * @since 0.1.0
 * @category defaults
 */
export const defaultPolicy: Policy = { bufferSize: 1024, strategy: "suspend", hardCap: 4096 }

const strategies: ReadonlyArray<Strategy> = ["suspend", "dropping", "sliding", "fail"]

const isPositiveInteger = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 1

/**
 * A connector's defaults for its overflow policy.
 *
 * @since 0.1.0
 * @category models
 */
export interface Defaults {
  readonly bufferSize?: number | undefined
  readonly strategy?: Strategy | undefined
  /** A number, or derived from the resolved `bufferSize` (e.g. `bufferSize + what a paused source still delivers`). */
  readonly hardCap?: number | ((bufferSize: number) => number) | undefined
}

/**
 * Validates `options` against the connector's defaults; an invalid field fails with a `Config` reason naming
 * the option (`overflow.bufferSize`, …) and the value given.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (
  connector: string,
  options: Options | undefined,
  defaults: Defaults = {}
): Effect.Effect<Policy, ConnectorError.ConnectorError> =>
  Effect.suspend(() => {
    const bufferSize = options?.bufferSize ?? defaults.bufferSize ?? defaultPolicy.bufferSize
    if (!isPositiveInteger(bufferSize)) {
      return Effect.fail(ConnectorError.config(connector, "overflow.bufferSize", bufferSize, "a positive integer"))
    }
    const strategy = options?.strategy ?? defaults.strategy ?? defaultPolicy.strategy
    if (!strategies.includes(strategy)) {
      return Effect.fail(
        ConnectorError.config(connector, "overflow.strategy", strategy, `one of ${strategies.join(", ")}`)
      )
    }
    const hardCap =
      options?.hardCap ??
      (typeof defaults.hardCap === "function" ? defaults.hardCap(bufferSize) : defaults.hardCap) ??
      bufferSize * 4
    if (!isPositiveInteger(hardCap) || hardCap < bufferSize) {
      return Effect.fail(
        ConnectorError.config(connector, "overflow.hardCap", hardCap, `an integer ≥ bufferSize (${bufferSize})`)
      )
    }
    return Effect.succeed({ bufferSize, strategy, hardCap })
  })

/**
 * The transport's own flow control, registered by a connector whose source can pause (ws `pause()`, a socket's
 * `pause()`).
 *
 * @since 0.1.0
 * @category models
 */
export interface FlowControl {
  /** Called as a method (`control.pause()`): a transport with `pause`/`resume` methods is a `FlowControl` itself. */
  pause(): void
  resume(): void
}

/**
 * What a connector pushes into: the `EmitOpsPush` of `StreamEmit.asyncPush`, plus flow control and counts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sink<in E, in A> extends EmitOpsPush<E, A> {
  /** Registers pause/resume; without it a `"suspend"` buffer can only grow to the hard cap. */
  readonly flowControl: (control: FlowControl) => void
  /** Values buffered now. */
  readonly depth: number
  /** Values handed to the consumer so far. */
  readonly delivered: number
  /** Whether the source is paused by this buffer now. */
  readonly paused: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StreamOptions {
  readonly connector: string
  /** Labels the metrics; default `"default"`. */
  readonly name?: string | undefined
  readonly policy: Policy
}

/**
 * The `Overflow` error of a policy, given how many values were buffered.
 *
 * @since 0.1.0
 * @category errors
 */
export const overflowError = (connector: string, policy: Policy): ((size: number) => ConnectorError.ConnectorError) => {
  // One function per connector and policy, shared by every handle that has them (a service may hold thousands).
  const key = `${connector}\u0000${policy.strategy}\u0000${policy.bufferSize}\u0000${policy.hardCap}`
  const known = overflowErrors.get(key)
  if (known !== undefined) return known
  const { bufferSize, strategy, hardCap } = policy
  const make = (size: number): ConnectorError.ConnectorError =>
    new ConnectorError.ConnectorError({
      connector,
      reason: new ConnectorError.Overflow({
        bufferSize,
        strategy,
        message:
          strategy === "fail"
            ? `buffer of ${bufferSize} full (strategy "fail")`
            : `source kept pushing past the hard cap of ${hardCap} values (${size} buffered): it did not pause`
      })
    })
  if (overflowErrors.size < 256) overflowErrors.set(key, make)
  return make
}

const overflowErrors = new Map<string, (size: number) => ConnectorError.ConnectorError>()

/**
 * A push stream under an overflow policy. `register` runs in the stream's scope: what it acquires is released
 * when the stream ends, fails or is interrupted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stream = <A, E = never, R = never>(
  register: (sink: Sink<E, A>) => Effect.Effect<unknown, E, R | Scope.Scope>,
  options: StreamOptions
): Stream.Stream<A, E | ConnectorError.ConnectorError, Exclude<R, Scope.Scope>> => {
  const { connector, policy } = options
  const dropped = Metrics.dropped(connector, options.name ?? "default")
  return Stream.unwrap(
    Effect.map(Effect.context<never>(), (context) =>
      fromBuffer<A, E | ConnectorError.ConnectorError, R>(
        {
          capacity: policy.bufferSize,
          strategy: policy.strategy,
          hardCap: policy.hardCap,
          overflow: overflowError(connector, policy),
          listener: droppedListener(dropped, context)
        },
        (buffer, scope) =>
          forkRegistration(
            buffer,
            scope,
            Effect.suspend(() => register(makePush<E | ConnectorError.ConnectorError, A>(buffer)))
          )
      )
    )
  ) as Stream.Stream<A, E | ConnectorError.ConnectorError, Exclude<R, Scope.Scope>>
}
