/** The words the node's log gives the enclave's fixed event names. */

/**
 * Words for the enclave's fixed event names in the node's log (the name stays in `event`): a
 * refused start logged only "enclave" before. Public facts only, as the names are.
 */
const TEXT: Readonly<Record<string, string>> = {
  'enclave.started.new-identity': 'the enclave started with a new node identity',
  'enclave.started.existing-identity': 'the enclave started with its sealed node identity',
  'enclave.started.upgraded': 'the enclave started a newer version and resealed its state',
  'enclave.start-refused': "the enclave refused to start (the start's error says why)",
  'enclave.stopped': 'the enclave stopped',
  'service.genesis': 'a new service began: genesis entry written',
  'service.opened': 'the service reopened from its sealed state and verified its log',
  'service.upgraded': 'the service state was resealed for this newer version',
  'service.epoch-recovered': 'an epoch interrupted before was completed',
  'service.epoch-begun': 'a new epoch began (platform counter moved)',
  'service.epoch-failed': 'the platform counter could not be moved: no new epoch',
  'service.secret-rotated': 'the ledger secret was rotated',
  'service.signature-failed': 'a log signature could not be written',
  'service.closed': 'the service closed',
  'ledger.stopped': 'the ledger stopped after a failed write: the node stops',
  'apps.reload-failed': 'a recorded app module could not be loaded at this start',
  'apps.deployed': 'an app was deployed or upgraded',
  'apps.operator-recorded': 'the operator key was recorded',
  'scp.session-failed': 'a secure session ended on a failure',
  'scp.handshake-failed': 'a secure connection handshake failed',
  'scp.sessions-full': "the enclave's session table is full",
};

/** The log message for enclave event `event`: its words, or the name itself for one not listed. */
export function enclaveEventText(event: string): string {
  return TEXT[event] ?? `enclave: ${event}`;
}
