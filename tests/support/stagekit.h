/* stagekit.h: helpers the stage tests share (fake API server set-up). Test code only. */
#ifndef VMPOOL_STAGEKIT_H
#define VMPOOL_STAGEKIT_H

/* a TCP port on 127.0.0.1 that was free a moment ago */
int stagekit_free_port(void);
/* a kubeconfig for a plain-http fake API server on 127.0.0.1:port with a bearer token;
 * ns may be NULL (no context namespace). Aborts if the file cannot be written. */
void stagekit_write_kubeconfig(const char *path, int port, const char *token, const char *ns);

#endif
