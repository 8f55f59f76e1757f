/* SPDX-License-Identifier: MIT-0 */
/* rnnq_matvec_ref.c - rnnq_matvec.h in portable C99 (the reference variant). */
#define RNNQ_MATVEC_SOURCE
#define RNNQ_MATVEC_PORTABLE
#define RNNQ_MATVEC_PORTABLE_API
#define RNNQ_MATVEC_PLAIN_PACK
#include "rnnq_matvec.h"
