/**
 * Checkpoints: a source's cursor (an SSE event id, an HTTP resume cursor) kept across restarts in a store, so
 * that a process that restarts resumes where its work stopped instead of from "now". At-least-once: a cursor is
 * saved only after the work on its item is done (the item's delivery was acknowledged), in batches and on a clean
 * close; a crash replays the items done since the last completed save (one batch, and those done while it was
 * being written), and loses none. A restart with a saved cursor is a
 * reconnect after an outage: the stream opens with a `Gap` whose downtime counts from the save.
 *
 * The store is a service (`Checkpoint.Store`): in memory and in a file here; Redis and Postgres stores live in
 * the packages that already depend on those clients.
 *
 * @since 0.2.0
 */
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Connector from "./Connector.ts"
import * as ConnectorError from "./ConnectorError.ts"
import * as Delivery from "./Delivery.ts"
import * as Lifecycle from "./Lifecycle.ts"

/**
 * A saved cursor and when it was saved (epoch milliseconds).
 *
 * @since 0.2.0
 * @category models
 */
export interface Saved {
  readonly cursor: string
  readonly savedAt: number
}

/**
 * Where checkpoints live. `describe` names the store in errors (`file ./tap.ckpt`, `redis key …`).
 *
 * @since 0.2.0
 * @category store
 */
export class Store extends Context.Service<
  Store,
  {
    readonly describe: string
    /** The saved cursor of `key`, or `undefined`; a corrupt or unreadable one is a `Config` error. */
    readonly load: (key: string) => Effect.Effect<Saved | undefined, ConnectorError.ConnectorError>
    readonly save: (key: string, saved: Saved) => Effect.Effect<void, ConnectorError.ConnectorError>
  }
>()("@streamemit/core/Checkpoint/Store") {}

/**
 * A checkpoint that cannot be read or written: a `Config` error (never retried, never a silent start from "now")
 * naming the key and the store.
 *
 * @since 0.2.0
 * @category errors
 */
export const storeError = (store: string, key: string, message: string, cause?: unknown) =>
  ConnectorError.make(
    "checkpoint",
    new ConnectorError.Config({ option: "checkpoint", message: `checkpoint "${key}" in ${store}: ${message}`, cause })
  )

/**
 * Checks what a store read: an object with a string `cursor` and a `savedAt` in epoch milliseconds.
 *
 * @since 0.2.0
 * @category store
 */
export const parseSaved = (
  store: string,
  key: string,
  value: unknown
): Effect.Effect<Saved, ConnectorError.ConnectorError> => {
  const saved = value as Partial<Saved> | null
  return typeof saved === "object" &&
    saved !== null &&
    typeof saved.cursor === "string" &&
    typeof saved.savedAt === "number" &&
    Number.isSafeInteger(saved.savedAt) &&
    saved.savedAt >= 0
    ? Effect.succeed({ cursor: saved.cursor, savedAt: saved.savedAt })
    : Effect.fail(storeError(store, key, `corrupt (${JSON.stringify(value)?.slice(0, 80)})`))
}

/**
 * A store from two functions on its backend: `read` gives what is kept under a key (`undefined` for nothing),
 * `write` keeps a checkpoint. Their failures become `Config` errors naming the key and the store (`describe`), and
 * what `read` gives is checked (`parseSaved`): a backend needs no error handling of its own.
 *
 * @since 0.2.0
 * @category store
 */
export const makeStore = (
  describe: string,
  backend: {
    readonly read: (key: string) => Promise<unknown>
    readonly write: (key: string, saved: Saved) => Promise<unknown>
  }
): Store["Service"] =>
  Store.of({
    describe,
    load: (key) =>
      Effect.flatMap(
        Effect.tryPromise({
          try: () => backend.read(key),
          catch: (cause) => storeError(describe, key, `unreadable: ${(cause as Error).message}`, cause)
        }),
        (value) => (value === undefined ? Effect.succeed(undefined) : parseSaved(describe, key, value))
      ),
    save: (key, saved) =>
      Effect.asVoid(
        Effect.tryPromise({
          try: () => backend.write(key, saved),
          catch: (cause) => storeError(describe, key, `cannot be written: ${(cause as Error).message}`, cause)
        })
      )
  })

/**
 * Checkpoints in memory: for tests, and for a process that only needs them across reconnects.
 *
 * @since 0.2.0
 * @category store
 */
export const layerMemory: Layer.Layer<Store> = Layer.sync(Store, () => {
  const saved = new Map<string, Saved>()
  return Store.of({
    describe: "memory",
    load: (key) => Effect.sync(() => saved.get(key)),
    save: (key, value) => Effect.sync(() => void saved.set(key, value))
  })
})

/**
 * Writes `text` to `path` so that a crash at any moment leaves the old file or the new one, never a torn or empty
 * one: a temporary file beside it, flushed to disk, renamed over it, the directory flushed.
 *
 * @since 0.2.0
 * @category store
 */
export const writeAtomically = async (path: string, text: string): Promise<void> => {
  const temporary = `${path}.${process.pid}.tmp`
  const handle = await Fs.open(temporary, "w")
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await Fs.rename(temporary, path)
  const directory = await Fs.open(Path.dirname(path), "r")
  try {
    await directory.sync()
  } finally {
    await directory.close()
  }
}

/**
 * Checkpoints in one JSON file (every key of the process): each save writes a temporary file, flushes it to disk,
 * renames it over the file and flushes the directory, so that a crash mid-save leaves the old file or the new
 * one, never a torn or empty one. A missing file is no checkpoint; an unreadable or corrupt one is a `Config`
 * error naming the file.
 *
 * @since 0.2.0
 * @category store
 */
export const layerFile = (path: string): Layer.Layer<Store> =>
  Layer.sync(Store, () => {
    const file = Path.resolve(path)
    let cache: Record<string, unknown> | undefined
    // One write at a time: saves of several keys must not interleave their renames.
    let writing: Promise<void> = Promise.resolve()
    const all = async () => {
      if (cache !== undefined) return cache
      let text: string
      try {
        text = await Fs.readFile(file, "utf8")
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === "ENOENT") return (cache = {})
        throw cause
      }
      const parsed = JSON.parse(text) as unknown
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object")
      return (cache = parsed as Record<string, unknown>)
    }
    return makeStore(`file ${path}`, {
      read: async (key) => (await all())[key],
      write: async (key, saved) => {
        const checkpoints = await all()
        checkpoints[key] = saved
        const next = writing.then(() => writeAtomically(file, JSON.stringify(checkpoints)))
        writing = next.catch(() => {})
        return next
      }
    })
  })

/**
 * @since 0.2.0
 * @category options
 */
export interface Options {
  /** The checkpoint's key in the store: one per source (and per consumer of it). */
  readonly key: string
  /** Save after this many items were done. Default 100. */
  readonly every?: number | undefined
  /** …or after this long, whichever first. Default 1 second. */
  readonly interval?: Duration.Input | undefined
}

/** One item handed out, in order, and whether its work is done. */
interface Tracked<A> {
  readonly item: A
  done: boolean
}

/**
 * Deliveries whose completions are taken in order: `onDone(item)` runs for each item once it and every item
 * handed out before it are done (acknowledged or `term`ed), in the order they were handed out — whatever order the
 * work finished in. A released or `nak`ed item holds everything after it. `check` may refuse an ack (a store that
 * failed). For what is kept of a source's progress: a cursor, a snapshot of a tree.
 *
 * @since 0.2.0
 * @category resume
 */
export const inOrder = <A>(
  source: string,
  onDone: (item: A) => void,
  check: () => ConnectorError.ConnectorError | undefined = () => undefined
): ((item: A, id: string) => Delivery.Delivery<A>) => {
  const pending: Array<Tracked<A>> = []
  let head = 0
  const advance = () => {
    while (head < pending.length && pending[head]!.done) onDone(pending[head++]!.item)
    // Drop what is behind the head now and then, not on every ack.
    if (head > 1024 && head * 2 > pending.length) {
      pending.splice(0, head)
      head = 0
    }
  }
  const settler: Delivery.Settler<Tracked<A>> = {
    ack: (tracked) => {
      const refused = check()
      if (refused !== undefined) return Promise.reject(refused)
      tracked.done = true
      advance()
      return Promise.resolve()
    },
    // Not done: it holds what comes after it, and a restart replays it.
    release: () => {},
    nak: () => Promise.resolve(),
    term: (tracked) => {
      tracked.done = true
      advance()
      return Promise.resolve()
    },
    failure: (cause) => cause as ConnectorError.ConnectorError
  }
  return (item, id) => {
    const tracked: Tracked<A> = { item, done: false }
    pending.push(tracked)
    return Delivery.make(settler, tracked, source, id, item, 1)
  }
}

/**
 * What a checkpointed connector gives: its handle (lifecycle, status, stats), and its messages as deliveries
 * whose `ack` says the work on them is done.
 *
 * @since 0.2.0
 * @category resume
 */
export interface Resumed<H, A> {
  readonly handle: H
  readonly deliveries: Stream.Stream<Delivery.Delivery<A>, ConnectorError.ConnectorError>
  /** The handle's `signals` with each message as its delivery: run one of `deliveries` and `signals`. */
  readonly signals: Stream.Stream<Lifecycle.Signal<Delivery.Delivery<A>>, ConnectorError.ConnectorError>
}

/**
 * A checkpointed connector as a stream of its deliveries: it resumes when the stream runs, saves on the way and
 * when the stream ends (each connector's `resumable`).
 *
 * @since 0.2.0
 * @category resume
 */
export const deliveries = <H, A, R>(
  resumed: Effect.Effect<Resumed<H, A>, ConnectorError.ConnectorError, R>
): Stream.Stream<Delivery.Delivery<A>, ConnectorError.ConnectorError, Exclude<R, Scope.Scope>> =>
  Stream.unwrap(Effect.map(resumed, (resumed) => resumed.deliveries))

/**
 * The options a connector is opened with after a save: `lastSeenAt` (its first connection opens with a `Gap`
 * whose downtime counts from the save); none the first time.
 *
 * @since 0.2.0
 * @category resume
 */
export const lastSeen = (saved: Saved | undefined): { readonly lastSeenAt?: number } =>
  saved === undefined ? {} : { lastSeenAt: saved.savedAt }

/**
 * A source resumed from its checkpoint: `open` connects it from the saved cursor (`undefined` the first time;
 * give the connector `lastSeenAt: saved.savedAt` so that it opens with a `Gap`; `latest()` is the cursor of the
 * last message handed out since, for a resync after a reconnect), and every message becomes a
 * `Delivery` whose `ack` says its work is done. The cursor saved is that of the last message before which every
 * message is done (work running concurrently finishes out of order; a `release`d or `nak`ed message holds the
 * checkpoint before it, so a restart replays it; `term` counts as done). Saved every `every` items or `interval`,
 * whichever first, and on a clean close (the Scope's end). Fails at once with a `Config` error for bad options or
 * a corrupt checkpoint.
 *
 * @since 0.2.0
 * @category resume
 */
export const resume = <A, H extends Connector.Handle<unknown, A>>(
  options: Options,
  open: (
    saved: Saved | undefined,
    latest: () => string | undefined
  ) => Effect.Effect<H, ConnectorError.ConnectorError, Scope.Scope>,
  cursorOf: (item: A) => string | undefined
): Effect.Effect<Resumed<H, A>, ConnectorError.ConnectorError, Scope.Scope | Store> =>
  Effect.gen(function* () {
    const store = yield* Store
    const config = (option: string, value: unknown, expected: string) =>
      ConnectorError.config("checkpoint", option, value, expected)
    if (typeof options.key !== "string" || options.key === "") {
      return yield* Effect.fail(config("checkpoint.key", options.key, "a non-empty string"))
    }
    const every = options.every ?? 100
    if (!Number.isInteger(every) || every < 1) {
      return yield* Effect.fail(config("checkpoint.every", options.every, "a positive integer"))
    }
    const interval = yield* Connector.duration("checkpoint", "checkpoint.interval", options.interval, "1 second")
    const key = options.key
    const saved = yield* store.load(key)
    // The cursor of the last message handed to the consumer (the saved one before any): where a resync after a
    // reconnect continues (rows after it, "send me everything after X").
    let latest = saved?.cursor
    const handle = yield* open(saved, () => latest)

    let committed = saved?.cursor
    let lastSaved = saved?.cursor
    let doneSinceSave = 0
    const saveNow = Effect.suspend(() => {
      const cursor = committed
      if (cursor === undefined || cursor === lastSaved) return Effect.void
      doneSinceSave = 0
      return Effect.tap(store.save(key, { cursor, savedAt: Date.now() }), () =>
        Effect.sync(() => {
          lastSaved = cursor
        })
      )
    })
    // Saves on the interval and when `every` items are done; a failed save fails the stream's consumer at the next
    // save (the cursor stays where it was: a restart replays more, loses nothing).
    let failed: ConnectorError.ConnectorError | undefined
    const saveInBackground = Effect.catch(saveNow, (error) =>
      Effect.sync(() => {
        failed = error
      })
    )
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(interval), saveInBackground)))
    // A clean close saves what is done.
    let closed = false
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Effect.ignore(saveNow)
      })
    )

    let sequence = 0
    let saveQueued = false
    const deliver = inOrder<A>(
      key,
      (item) => {
        const cursor = cursorOf(item)
        if (cursor !== undefined) committed = cursor
        // Once the acks of this turn are in: the save takes the furthest cursor.
        if (++doneSinceSave >= every && !saveQueued) {
          saveQueued = true
          queueMicrotask(() => {
            saveQueued = false
            // Not after the close: the close saves last, and the store may be gone.
            if (!closed) Effect.runFork(saveInBackground)
          })
        }
      },
      () => failed
    )
    const track = (item: A) => {
      const cursor = cursorOf(item)
      if (cursor !== undefined) latest = cursor
      return deliver(item, cursor ?? `#${++sequence}`)
    }
    const deliveries = Stream.map(handle.messages, track)
    const signals = Stream.map(
      handle.signals,
      (signal): Lifecycle.Signal<Delivery.Delivery<A>> =>
        signal._tag === "Message" ? new Lifecycle.Message({ message: track(signal.message) }) : signal
    )
    return { handle, deliveries, signals }
  })

/**
 * The options of a connector resumed by the outbox pattern: its own options, with an `onResync` that is given the
 * cursor to read on from.
 *
 * @since 0.2.0
 * @category outbox
 */
export type OutboxOptions<O, Item> = Omit<O, "onResync"> & {
  readonly checkpoint: Options & {
    /** An item's position (the id of the outbox row it carries); an item without one keeps the previous. */
    readonly cursorOf: (item: Item) => string | undefined
  }
  /**
   * After a restart with a saved cursor, and after every reconnect: what was written while nobody listened, as
   * items, from `cursor` on (the outbox rows after it). Runs after the `Gap`, before live items.
   */
  readonly onResync?:
    | ((
        info: Connector.ResyncInfo & { readonly cursor: string | undefined }
      ) => Effect.Effect<ReadonlyArray<Item>, ConnectorError.ConnectorError>)
    | undefined
}

/**
 * A connector with an `onResync` (pg-listen, redis-pubsub) resumed by the outbox pattern: the producer writes each
 * item where it stays (a row, a stream entry) and announces its id; the consumer saves the id of the last item
 * whose work is done, and on start — and after every reconnect — `onResync({ cursor })` reads what came after it.
 *
 * @since 0.2.0
 * @category outbox
 */
export const outbox = <O, Item, H extends Connector.Handle<unknown, Item>>(
  options: OutboxOptions<O, Item>,
  make: (options: O) => Effect.Effect<H, ConnectorError.ConnectorError, Scope.Scope>
): Effect.Effect<Resumed<H, Item>, ConnectorError.ConnectorError, Scope.Scope | Store> => {
  const { checkpoint, onResync, ...rest } = options
  return resume(
    checkpoint,
    (saved, latest) =>
      make({
        ...rest,
        ...(onResync === undefined
          ? {}
          : { onResync: (info: Connector.ResyncInfo) => onResync({ ...info, cursor: latest() }) }),
        ...lastSeen(saved)
      } as O),
    checkpoint.cursorOf
  )
}
