/**
 * Header on the console server's own error answers (never on the node's, whose headers are not
 * passed on): the page tells "the console could not reach the node" from anything the node says.
 * Shared by the server and the page (bundled for the browser: no Node built-in here).
 */
export const CONSOLE_ERROR_HEADER = 'cloister-console-error';
