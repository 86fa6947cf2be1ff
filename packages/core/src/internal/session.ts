/**
 * A driver's view of one connection (`Driver.Session`): what its callbacks push (batched per synchronous run),
 * traffic counts for the watchdog and the metrics, and the end or failure it reports. A late callback of a
 * connection that is over hits an inactive session and is ignored.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as ConnectorError from "../ConnectorError.ts"
import type * as Driver from "../Driver.ts"
import * as Lifecycle from "../Lifecycle.ts"
import type * as Overflow from "../Overflow.ts"
import type { Machine } from "./machine.ts"

export class SessionState<Item> implements Driver.Session<Item> {
  active = true
  /**
   * When traffic was last seen, on the clock of `activeNow` (time paused by our buffer does not pass): stamped
   * once per `push` batch (one socket read), per `emit`/`emitAll` call, and by `received` and `alive`.
   */
  private stamp: number
  ended: { readonly _tag: "End" } | { readonly _tag: "Fail"; readonly error: ConnectorError.ConnectorError } | undefined
  notify: (() => void) | undefined = undefined
  messages = 0
  bytes = 0
  readonly attempt: number
  private readonly core: Machine<Item>

  constructor(core: Machine<Item>, attempt: number, now: number) {
    this.core = core
    this.attempt = attempt
    this.stamp = now
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
    this.stamp = this.core.activeNow()
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
    // A `push` batch (owned) was stamped by `received` in `flush`.
    if (!owned) this.stamp = this.core.activeNow()
    return this.core.buffer.offerAll(items, owned)
  }

  received = (bytes: number): void => {
    this.bytes += bytes
    this.stamp = this.core.activeNow()
  }

  alive = (): void => {
    this.stamp = this.core.activeNow()
  }

  /** When traffic was last seen, on the clock of `activeNow`. */
  lastSeen(): number {
    return this.stamp
  }

  skipped = (): void => {
    this.core.update(this.core.metrics.decodeSkipped, 1)
  }

  dropped = (count: number): void => {
    if (!this.active || count <= 0) return
    this.core.buffer.dropped += count
    this.core.update(this.core.metrics.dropped, count)
  }

  /** Set once `Connected` (and the reconnect's `Gap`, and the resync) are in the stream. */
  private live = false
  private lostEarly = 0

  lost = (count: number): void => {
    if (!this.active || this.ended !== undefined || count <= 0) return
    // What was read before the loss was noticed comes before its Gap.
    if (this.pending.length > 0) this.flush()
    this.core.update(this.core.metrics.lost, count)
    if (this.live) this.publishLost(count)
    else this.lostEarly += count
  }

  /** The connection is announced: a loss noticed while connecting follows `Connected` (and its `Gap`) now. */
  goLive(): void {
    this.live = true
    // The watchdog counts from here: a slow connect (or resync) has its own timeout and must not use up the
    // idle budget of the connection it produced.
    this.stamp = this.core.activeNow()
    if (this.lostEarly > 0) this.publishLost(this.lostEarly)
    this.lostEarly = 0
  }

  private publishLost(count: number): void {
    this.core.publish(new Lifecycle.Gap({ downtime: Duration.zero, delivery: "possible-loss", lost: count }))
  }

  end = (): void => this.settle({ _tag: "End" })

  fail = (error: ConnectorError.ConnectorError): void => this.settle({ _tag: "Fail", error })

  private settle(outcome: NonNullable<SessionState<Item>["ended"]>): void {
    if (!this.active || this.ended !== undefined) return
    // What arrived before the end is delivered before it.
    if (this.pending.length > 0) this.flush()
    this.ended = outcome
    this.notify?.()
    // A live connection holds no fiber: the machine releases it and goes on.
    this.core.settled(this)
  }

  setReconnectFloor = (delay: Duration.Input): void => {
    const decoded = Duration.fromInput(delay)
    if (Option.isSome(decoded)) this.core.reconnectFloor = decoded.value
  }

  flowControl = (control: Overflow.FlowControl): void => {
    if (this.active) this.core.buffer.setFlowControl(control)
  }

  /**
   * Fails with the error the driver reports; never succeeds (an end is not a failure). Made per use (the connect
   * and the resync race it) rather than held: a live connection does not need it.
   */
  awaitFailure(): Effect.Effect<never, ConnectorError.ConnectorError> {
    return Effect.flatMap(this.awaitEnd(), () => Effect.never)
  }

  /** Waits until the driver reports the end or failure of the connection. */
  private awaitEnd(): Effect.Effect<void, ConnectorError.ConnectorError> {
    return Effect.callback((resume) => {
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
}
