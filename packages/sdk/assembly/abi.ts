/**
 * The raw imports of ABI v1 (docs/app-abi.md §4–§9), module `cloister`. Byte strings cross as
 * a pointer and a length into this module's memory; sizes of variable-size answers come back as
 * the return value and the bytes are then copied out of the host buffer with `buffer_read`
 * (§1.1). Negative returns are the statuses of §1.2. App code uses the wrappers (Table,
 * Context, Crypto…).
 */

/** ABI version this SDK implements (`cloister_abi_version`, §2). */
export const ABI_VERSION: i32 = 1;

export const NOT_FOUND: i32 = -1;
export const EXISTS: i32 = -2;
export const WRONG_KIND: i32 = -3;
export const AUTH_FAILED: i32 = -4;

// §3
@external('cloister', 'route')
export declare function route(kind: i32, namePtr: usize, nameLen: i32, id: i32): void;
@external('cloister', 'call_args')
export declare function call_args(ptr: usize): void;

// §4
@external('cloister', 'ledger_get')
export declare function ledger_get(
  tablePtr: usize,
  tableLen: i32,
  keyPtr: usize,
  keyLen: i32,
): i32;
@external('cloister', 'ledger_set')
export declare function ledger_set(
  tablePtr: usize,
  tableLen: i32,
  keyPtr: usize,
  keyLen: i32,
  valuePtr: usize,
  valueLen: i32,
): void;
@external('cloister', 'ledger_remove')
export declare function ledger_remove(
  tablePtr: usize,
  tableLen: i32,
  keyPtr: usize,
  keyLen: i32,
): void;
@external('cloister', 'ledger_history')
export declare function ledger_history(
  tablePtr: usize,
  tableLen: i32,
  keyPtr: usize,
  keyLen: i32,
  limit: i32,
): i32;
@external('cloister', 'ledger_list')
export declare function ledger_list(
  tablePtr: usize,
  tableLen: i32,
  cursorPtr: usize,
  cursorLen: i32,
  limit: i32,
): i32;
@external('cloister', 'ledger_prove')
export declare function ledger_prove(
  tablePtr: usize,
  tableLen: i32,
  keyPtr: usize,
  keyLen: i32,
): i32;
@external('cloister', 'ledger_state_hash')
export declare function ledger_state_hash(outPtr: usize): void;
@external('cloister', 'buffer_read')
export declare function buffer_read(ptr: usize): void;

// §5
@external('cloister', 'context_kind')
export declare function context_kind(): i32;
@external('cloister', 'context_caller')
export declare function context_caller(outPtr: usize): void;
@external('cloister', 'context_request_id')
export declare function context_request_id(): i32;
@external('cloister', 'context_index')
export declare function context_index(): i64;
@external('cloister', 'context_time')
export declare function context_time(): i64;

// §6, §7
@external('cloister', 'result_set')
export declare function result_set(ptr: usize, len: i32): void;
@external('cloister', 'notify')
export declare function notify(ptr: usize, len: i32): void;
@external('cloister', 'fail')
export declare function fail(codePtr: usize, codeLen: i32, msgPtr: usize, msgLen: i32): void;

// §9
@external('cloister', 'sha256')
export declare function sha256(ptr: usize, len: i32, outPtr: usize): void;
@external('cloister', 'random_bytes')
export declare function random_bytes(outPtr: usize, len: i32): void;
@external('cloister', 'key_create')
export declare function key_create(kind: i32, namePtr: usize, nameLen: i32): i32;
@external('cloister', 'key_public')
export declare function key_public(namePtr: usize, nameLen: i32): i32;
@external('cloister', 'key_sign')
export declare function key_sign(namePtr: usize, nameLen: i32, msgPtr: usize, msgLen: i32): i32;
@external('cloister', 'ecdsa_verify')
export declare function ecdsa_verify(
  pubPtr: usize,
  pubLen: i32,
  msgPtr: usize,
  msgLen: i32,
  sigPtr: usize,
  sigLen: i32,
): i32;
@external('cloister', 'key_encrypt')
export declare function key_encrypt(
  namePtr: usize,
  nameLen: i32,
  ptPtr: usize,
  ptLen: i32,
  aadPtr: usize,
  aadLen: i32,
): i32;
@external('cloister', 'key_decrypt')
export declare function key_decrypt(
  namePtr: usize,
  nameLen: i32,
  ctPtr: usize,
  ctLen: i32,
  aadPtr: usize,
  aadLen: i32,
): i32;
