/* A small CSV reader for the simulator's seed data (RFC 4180: quoted
 * fields, doubled quotes, CRLF or LF line ends, newlines inside quotes). */
#ifndef FIELDSYNC_SIM_SIM_CSV_H
#define FIELDSYNC_SIM_SIM_CSV_H

#include "base/result.h"

#include <stddef.h>
#include <stdio.h>

/* Longest field and most fields per row accepted. */
#define SIM_CSV_MAX_FIELD 65536
#define SIM_CSV_MAX_FIELDS 64

struct sim_csv_row {
    char *fields[SIM_CSV_MAX_FIELDS]; /* owned by the row */
    size_t count;
};

/* Reads the next row into row (whose old fields are freed first). Returns
 * FS_OK with a row, FS_ERR_NOT_FOUND at the end of the file, FS_ERR_INVALID
 * for a malformed row (unterminated quote, over a limit). */
fs_result sim_csv_next(FILE *in, struct sim_csv_row *row);
void sim_csv_row_clear(struct sim_csv_row *row);

#endif
