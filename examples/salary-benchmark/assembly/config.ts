/**
 * The issuer this app trusts, compiled in: its code id (SHA-256 of the module, which clients
 * pin) commits to this key. Written by examples/tools/credentials.ts `config`.
 *
 * TEST ONLY: this is the fixed test issuer of examples/tools/credentials.ts (`TEST_ISSUER_PEM`),
 * whose private key is public. Run `npx tsx examples/tools/credentials.ts config --issuer
 * YOUR.pem --app salary-benchmark` before deploying a benchmark anyone should contribute to.
 */
export const ISSUER_PUBLIC_KEY_HEX =
  '0414ad4d6667aff48fa66d15799330e86810bfcb15849eb17420ed44ae922b8a2533eef0e3595032fd37553b297080df516526580b19a8272cd2f5b2f4d29f4891';
