/**
 * @since 0.1.0
 */

/**
 * Server-Sent Events (eventsource) as a scoped, bounded, resumable stream.
 *
 * @since 0.1.0
 */
export * as Sse from "./Sse.ts"
