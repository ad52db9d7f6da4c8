/* queue / suppression: the outgoing queue's admin commands, over NATS
 * (queue.v1.admin.*, proto/queue.proto). */
#ifndef CLI_CMD_QUEUE_H
#define CLI_CMD_QUEUE_H

/* mailfleet queue list|hold|release|fail|drop|reschedule|transport|requiretls
 *   [filters], mailfleet queue holdrule list|add|remove */
int cli_cmd_queue(int argc, char **argv);
/* mailfleet suppression list|add|remove */
int cli_cmd_suppression(int argc, char **argv);

#endif
