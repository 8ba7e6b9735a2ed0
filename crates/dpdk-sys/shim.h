/* What DPDK offers only as static inline functions or macros, as real
 * functions Rust can call. */
#include <stdint.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>

uint16_t tlpf_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **mbufs, uint16_t n);
uint16_t tlpf_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **mbufs, uint16_t n);
struct rte_mbuf *tlpf_pktmbuf_alloc(struct rte_mempool *pool);
int tlpf_pktmbuf_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **mbufs, unsigned n);
void tlpf_pktmbuf_free(struct rte_mbuf *m);
void *tlpf_pktmbuf_mtod(struct rte_mbuf *m);
char *tlpf_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
unsigned tlpf_ring_enqueue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned tlpf_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned tlpf_lcore_id(void);
int tlpf_errno(void);
