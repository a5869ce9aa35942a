/*
 * iobuf.c - moving bytes between sockets and buffers, for clients and servers alike.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core.h"
#include "tls.h"

/*
 * A buffer of PGC_IOBUF_SIZE is mapped from the system rather than
 * malloc'd: given back (munmap), its memory leaves the process at once,
 * whereas freed malloc memory lying among live client structs stays in it
 * for good; and a fresh one costs only the pages actually written (the
 * startup packet of a client logging in: one). The worker's free list
 * (worker.c) keeps the forwarding path free of system calls. Bigger
 * buffers (pgc_iobuf_grow) are malloc'd; cap tells which is which.
 * Under AddressSanitizer all are malloc'd, so that it still catches
 * overruns at a buffer's edges (it does not watch mapped memory).
 */
#define IOBUF_MAP_SIZE (sizeof(pgc_iobuf) + PGC_IOBUF_SIZE)
#if defined(__SANITIZE_ADDRESS__)
#define IOBUF_MAPPED 0
#else
#define IOBUF_MAPPED 1
#endif

pgc_iobuf *
pgc_iobuf_new(void)
{
	pgc_iobuf *b;

	if (IOBUF_MAPPED)
	{
		b = mmap(NULL, IOBUF_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b == MAP_FAILED)
			return NULL;
	}
	else if ((b = malloc(IOBUF_MAP_SIZE)) == NULL)
		return NULL;
	b->next_free = NULL;
	b->cap = PGC_IOBUF_SIZE;
	b->start = b->scan = b->end = 0;
	return b;
}

void
pgc_iobuf_free(pgc_iobuf *b)
{
	if (b == NULL)
		return;
	if (IOBUF_MAPPED && b->cap == PGC_IOBUF_SIZE)
		munmap(b, IOBUF_MAP_SIZE);
	else
		free(b);
}

/* Drop the first n bytes of m. */
static void
msgbuf_consume(pgc_msgbuf *m, size_t n)
{
	memmove(m->data, m->data + n, m->len - n);
	m->len -= n;
}

/* Decrypt what fits into b; same results as pgc_iobuf_read. */
static ssize_t
tls_read(pgc_tls *tls, pgc_iobuf *b)
{
	ssize_t total = 0;

	while (b->end < b->cap)
	{
		ssize_t n = pgc_tls_read(tls, b->data + b->end, b->cap - b->end);

		if (n <= 0)
			return total > 0 ? total : n;
		b->end += (size_t) n;
		total += n;
	}
	return total;
}

/* Read once into *bufp. Returns bytes read, 0 on EOF, -1 on error, -2 when nothing can be read now. */
ssize_t
pgc_iobuf_read(pgc_worker *w, int fd, pgc_tls *tls, pgc_iobuf **bufp)
{
	pgc_iobuf *b = *bufp;
	ssize_t n;

	if (b == NULL)
	{
		b = *bufp = pgc_worker_get_buf(w);
		if (b == NULL)
			return -1;
	}
	if (b->end == b->cap && b->start > 0)
	{
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->scan -= b->start;
		b->end -= b->start;
		b->start = 0;
	}
	if (b->end == b->cap)
		return -2;
	if (tls)
		return tls_read(tls, b);
	do
		n = read(fd, b->data + b->end, b->cap - b->end);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? -2 : -1;
	b->end += (size_t) n;
	return n;
}

/* Write b[start, scan) to fd. Returns 1 when all is written, 0 when the socket is full, -1 on error. */
int
pgc_iobuf_write(int fd, pgc_tls *tls, pgc_iobuf *b)
{
	if (tls)
		return pgc_write_both(fd, tls, NULL, b);
	while (b->start < b->scan)
	{
		ssize_t n = write(fd, b->data + b->start, b->scan - b->start);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		b->start += (size_t) n;
	}
	if (b->start == b->end)
		b->start = b->scan = b->end = 0;
	return 1;
}

int
pgc_msgbuf_write(int fd, pgc_tls *tls, pgc_msgbuf *m)
{
	size_t done = 0;
	int rc = 1;

	if (tls)
		return pgc_write_both(fd, tls, m, NULL);
	while (m && done < m->len)
	{
		ssize_t n = write(fd, m->data + done, m->len - done);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			rc = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
			break;
		}
		done += (size_t) n;
	}
	if (m && done)
		msgbuf_consume(m, done);
	return rc;
}


pgc_msgbuf *
pgc_msgbuf_ensure(pgc_msgbuf **slot)
{
	if (*slot == NULL)
	{
		*slot = calloc(1, sizeof(pgc_msgbuf));
		if (*slot)
			pgc_msgbuf_init(*slot);
	}
	return *slot;
}

void
pgc_msgbuf_release(pgc_msgbuf **slot)
{
	if (*slot)
	{
		pgc_msgbuf_free(*slot);
		free(*slot);
		*slot = NULL;
	}
}

bool
pgc_iobuf_pass_rest(pgc_iobuf *b, uint32_t *skip)
{
	size_t n = b->end - b->scan < *skip ? b->end - b->scan : *skip;

	b->scan += n;
	*skip -= (uint32_t) n;
	return *skip == 0;
}

void
pgc_iobuf_pass(pgc_iobuf *b, size_t total, uint32_t *skip)
{
	size_t avail = b->end - b->scan;

	if (avail >= total)
		b->scan += total;
	else
	{
		/* The rest of the message streams through as it arrives. */
		b->scan = b->end;
		*skip = (uint32_t) (total - avail);
	}
}

pgc_iobuf *
pgc_iobuf_grow(pgc_iobuf *b, size_t total)
{
	size_t keep = b->end - b->start;
	size_t need = (b->scan - b->start) + total;
	size_t cap;
	pgc_iobuf *nb;

	if (need <= b->cap)
	{
		if (b->scan + total > b->cap)
		{
			memmove(b->data, b->data + b->start, keep);
			b->scan -= b->start;
			b->end -= b->start;
			b->start = 0;
		}
		return b;
	}
	/* Double, so that a message arriving in pieces costs few copies. */
	cap = b->cap;
	while (cap < need)
		cap *= 2;
	nb = malloc(sizeof(*nb) + cap);
	if (nb == NULL)
		return NULL;
	nb->next_free = NULL;
	nb->cap = cap;
	memcpy(nb->data, b->data + b->start, keep);
	nb->start = 0;
	nb->scan = b->scan - b->start;
	nb->end = keep;
	pgc_iobuf_free(b);
	return nb;
}

/* pgc_write_both over TLS: plaintext is taken whole unless ciphertext already waits. */
static int
tls_write_both(pgc_tls *tls, pgc_msgbuf *m, pgc_iobuf *b)
{
	ssize_t n;

	if (m && m->len)
	{
		n = pgc_tls_write(tls, m->data, m->len);
		if (n < 0)
			return -1;
		msgbuf_consume(m, (size_t) n);
		if (m->len)
			return 0;
	}
	if (b && b->scan > b->start)
	{
		n = pgc_tls_write(tls, b->data + b->start, b->scan - b->start);
		if (n < 0)
			return -1;
		b->start += (size_t) n;
		if (b->start < b->scan)
			return 0;
	}
	if (b && b->start == b->end)
		b->start = b->scan = b->end = 0;
	return pgc_tls_flush(tls);
}

int
pgc_write_both(int fd, pgc_tls *tls, pgc_msgbuf *m, pgc_iobuf *b)
{
	if (tls)
		return tls_write_both(tls, m, b);
	for (;;)
	{
		struct iovec iov[2];
		int n = 0;
		size_t mlen = m ? m->len : 0;
		size_t done;
		ssize_t w;

		if (mlen)
		{
			iov[n].iov_base = m->data;
			iov[n++].iov_len = mlen;
		}
		if (b && b->scan > b->start)
		{
			iov[n].iov_base = b->data + b->start;
			iov[n++].iov_len = b->scan - b->start;
		}
		if (n == 0)
			break;
		w = writev(fd, iov, n);
		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
		}
		done = (size_t) w;
		if (mlen)
		{
			size_t k = done < mlen ? done : mlen;

			msgbuf_consume(m, k);
			done -= k;
		}
		if (b)
			b->start += done;
	}
	if (b && b->start == b->end)
		b->start = b->scan = b->end = 0;
	return 1;
}
