/** The error a stream or a waiting request ends with when the server stops before its task did. */
export const SHUTTING_DOWN = Object.freeze({
  code: 'server_shutting_down',
  message: 'the server is shutting down before this task ended; it stays stored: ask for it again after the restart',
});
