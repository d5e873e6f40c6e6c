/* SPDX-License-Identifier: Apache-2.0 */
/* Intrusive doubly linked lists with a sentinel head: the order of LRU caches. */
#ifndef KILN_LIST_H
#define KILN_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *prev, *next;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list_node *head)
{
	head->prev = head->next = head;
}

static inline bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

/* Unlinks node; it is then a list of its own, so removing it again is harmless. */
static inline void list_remove(struct list_node *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = node->next = node;
}

static inline void list_push_front(struct list_node *head, struct list_node *node)
{
	node->next = head->next;
	node->prev = head;
	head->next->prev = node;
	head->next = node;
}

/* Makes node the first of head's list: the most recently used. */
static inline void list_move_front(struct list_node *head, struct list_node *node)
{
	list_remove(node);
	list_push_front(head, node);
}

#endif /* KILN_LIST_H */
