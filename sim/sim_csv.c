/* CSV row reader used to load the simulator's seed deals and owners. */
#include "sim_csv.h"

#include "base/buf.h"

#include <stdbool.h>
#include <stdlib.h>

void sim_csv_row_clear(struct sim_csv_row *row)
{
    for (size_t i = 0; i < row->count; i++) {
        free(row->fields[i]);
        row->fields[i] = NULL;
    }
    row->count = 0;
}

static fs_result end_field(struct sim_csv_row *row, struct buf *field)
{
    if (row->count >= SIM_CSV_MAX_FIELDS)
        return FS_ERR_INVALID;
    buf_append(field, "", 0);
    row->fields[row->count++] = buf_steal(field);
    return FS_OK;
}

fs_result sim_csv_next(FILE *in, struct sim_csv_row *row)
{
    struct buf field = {0};
    bool quoted = false;
    bool after_quote = false;
    bool any = false;
    fs_result result = FS_OK;
    int c;

    sim_csv_row_clear(row);
    while ((c = fgetc(in)) != EOF) {
        any = true;
        if (field.len >= SIM_CSV_MAX_FIELD) {
            result = FS_ERR_INVALID;
            goto out;
        }
        if (quoted) {
            if (c != '"') {
                buf_append(&field, &(char){(char)c}, 1);
                continue;
            }
            int next = fgetc(in);
            if (next == '"') {
                buf_append(&field, "\"", 1);
                continue;
            }
            if (next != EOF)
                ungetc(next, in);
            quoted = false;
            after_quote = true;
            continue;
        }
        if (c == '"' && field.len == 0 && !after_quote) {
            quoted = true;
            continue;
        }
        if (c == ',') {
            result = end_field(row, &field);
            if (result != FS_OK)
                goto out;
            after_quote = false;
            continue;
        }
        if (c == '\r')
            continue;
        if (c == '\n') {
            result = end_field(row, &field);
            goto out;
        }
        if (after_quote) {
            result = FS_ERR_INVALID;
            goto out;
        }
        buf_append(&field, &(char){(char)c}, 1);
    }

    if (quoted)
        result = FS_ERR_INVALID;
    else if (!any)
        result = FS_ERR_NOT_FOUND;
    else
        result = end_field(row, &field);
out:
    buf_free(&field);
    if (result != FS_OK)
        sim_csv_row_clear(row);
    return result;
}
