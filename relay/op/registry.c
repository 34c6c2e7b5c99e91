/* registry.c: the op registry: the family tables of relay/op/ seen as one list, looked up by
 * name. */
#include <string.h>

#include "relay/op.h"

typedef struct family {
  const relay_op *ops;
  const int *count;
} family;

static const family families[] = {
    {relay_ops_elemwise, &relay_ops_elemwise_count},
    {relay_ops_transform, &relay_ops_transform_count},
    {relay_ops_reduce, &relay_ops_reduce_count},
    {relay_ops_nn, &relay_ops_nn_count},
};
enum { NFAMILIES = sizeof families / sizeof families[0] };

int relay_op_count(void) {
  int n = 0;
  for (int f = 0; f < NFAMILIES; f++) n += *families[f].count;
  return n;
}

const relay_op *relay_op_at(int i) {
  for (int f = 0; f < NFAMILIES; f++) {
    if (i < *families[f].count) return i >= 0 ? &families[f].ops[i] : NULL;
    i -= *families[f].count;
  }
  return NULL;
}

const relay_op *relay_op_lookup(const char *name) {
  if (!name) return NULL;
  for (int f = 0; f < NFAMILIES; f++)
    for (int i = 0; i < *families[f].count; i++)
      if (strcmp(families[f].ops[i].name, name) == 0) return &families[f].ops[i];
  return NULL;
}
