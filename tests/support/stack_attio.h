/* The Attio entry of the integration stack (stack_crm.h) and what only
 * Attio's own tests use: the simulated workspace's credentials, and the
 * ids `crmsim attio` gives the seed's records and statuses. */
#ifndef FIELDSYNC_TESTS_STACK_ATTIO_H
#define FIELDSYNC_TESTS_STACK_ATTIO_H

#define STACK_ATTIO_TOKEN "attio-stack-token"
/* The secret of the webhook the simulator starts with, and of accounts
 * connected with a hand-made webhook. */
#define STACK_ATTIO_SECRET "attio-stack-secret"

#endif
