/*
 * multicall.h: vmpoold is one executable (supervisor/multicall.c): the supervisor and the
 * four stages, each run by the name it is started under (argv[0]'s last component), as
 * vmpool-watcher, vmpool-planner, vmpool-actuator and vmpool-status are links to vmpoold.
 * These are the five programs' main functions.
 */
#ifndef VMPOOL_MULTICALL_H
#define VMPOOL_MULTICALL_H

int vmpoold_main(int argc, char **argv);         /* supervisor/vmpoold.c */
int vmpool_watcher_main(int argc, char **argv);  /* watcher/main.c */
int vmpool_planner_main(int argc, char **argv);  /* planner/main.c */
int vmpool_actuator_main(int argc, char **argv); /* actuator/main.c */
int vmpool_status_main(int argc, char **argv);   /* status/main.c */

#endif
