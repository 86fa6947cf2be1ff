/**
 * @since 0.1.0
 */

/**
 * WebSocket messages (ws) as a scoped, bounded, self-healing stream.
 *
 * @since 0.1.0
 */
export * as WebSocket from "./WebSocket.ts"
