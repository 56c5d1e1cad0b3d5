#ifndef WHARF_CZEROMQ_SHIM_H
#define WHARF_CZEROMQ_SHIM_H
#include <zmq.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>  /* the fleet simulator waits on many sockets' ZMQ_FDs with epoll */

/* Option 93 is a draft constant in 4.3.4 but Debian's build accepts it (see shared/ZEROMQ-NOTES.md). */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif
static const int wharf_zmq_zap_enforce_domain = ZMQ_ZAP_ENFORCE_DOMAIN;

/* Names the calling thread as the system shows it (top -H, perf); prctl is variadic, so Swift
   cannot call it directly. Only the first 15 bytes are kept. */
#include <sys/prctl.h>
static inline void wharf_name_current_thread(const char *name) { (void)prctl(PR_SET_NAME, name, 0, 0, 0); }

/* zmq_msg_t is an opaque 64-byte struct; callers keep it on the heap from init to close. */
static inline size_t wharf_zmq_msg_size_of(void) { return sizeof(zmq_msg_t); }
#endif
