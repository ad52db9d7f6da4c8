/* queue_db_private: the SQLite handle, for the queue modules that keep
 * their own tables (hold rules, suppression, retired history). */
#ifndef QUEUE_DB_PRIVATE_H
#define QUEUE_DB_PRIVATE_H

#include <sqlite3.h>

#include "queue_db.h"

sqlite3 *queue_db_sqlite(struct queue_db *db);
/* "what: <sqlite error>" */
const char *queue_db_error(struct queue_db *db, const char *what);
/* Column text as a new string ("" for NULL). */
char *queue_db_column_str(sqlite3_stmt *st, int col);

#endif
