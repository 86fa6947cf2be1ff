/**
 * @since 0.1.0
 */

/**
 * File-system changes (chokidar) as a scoped, bounded, coalescing stream.
 *
 * @since 0.1.0
 */
export * as FsWatcher from "./FsWatcher.ts"
