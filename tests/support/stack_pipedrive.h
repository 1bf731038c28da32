/* The Pipedrive entry of the integration stack (stack_crm.h) and what
 * only Pipedrive's own tests use: the simulated company's credentials
 * and a webhook posted by hand with its Basic credentials. */
#ifndef FIELDSYNC_TESTS_STACK_PIPEDRIVE_H
#define FIELDSYNC_TESTS_STACK_PIPEDRIVE_H

struct stack;

#define STACK_PIPEDRIVE_TOKEN "stack-api-token"
/* The company id of the simulator's account 0; one beside another is
 * this plus its account base (stack_crm.h). */
#define STACK_PIPEDRIVE_COMPANY 9120044
#define STACK_PIPEDRIVE_USER "13377001"
#define STACK_PIPEDRIVE_HOOK_USER "stack-hook"
#define STACK_PIPEDRIVE_HOOK_PASSWORD "stack-hook-password-0123456789"
/* The simulator's key of the fieldsync_id deal field. */
#define STACK_PIPEDRIVE_OUR_ID_KEY "d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d354"

/* "Basic base64(user:password)" of the webhook connect registered for
 * the stack's connection (the password fieldsync made); the caller
 * frees; NULL when the database has none. */
char *stack_pipedrive_basic(struct stack *s);

/* POSTs body to fieldsync at path (e.g. /webhooks/pipedrive/1) with the
 * Authorization header auth (NULL: none); returns the HTTP status. */
long stack_pipedrive_webhook(struct stack *s, const char *path,
                             const char *auth, const char *body);

#endif
