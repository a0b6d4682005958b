/**
 * The Cloister SDK for apps written in AssemblyScript (docs/app-abi.md). Import from
 * '@cloister/sdk'; mark methods with `@query` or `@transaction` (the SDK's transform registers
 * them: see README.md).
 */
export { Context } from './assembly/context';
export { Crypto, KeyKind } from './assembly/crypto';
export { fromHex, fromUtf8, toHex, utf8 } from './assembly/bytes';
export { Json, JsonKind, JSON_MAX_DEPTH, quoteJson } from './assembly/json';
export { Entry, Ledger, Page, Table, Version } from './assembly/ledger';
export { fail, notify, setResult, setResultText } from './assembly/result';
