/* threadpool.c: the runtime's persistent thread pool behind kiln_rt_parallel_launch, and the
 * small helpers generated kernels call (thread count, workspace memory, error reporting).
 * A kernel calls kiln_rt_parallel_launch once per parallel loop, often thousands of times a
 * second, so a launch is a few atomic operations while the workers are awake: they spin
 * briefly on a generation counter after each job and only then sleep on a futex; and the
 * caller never waits for a worker that has not started, it runs the tasks itself.
 * libc and pthreads only (this file is part of the LLVM-free libkiln_runtime.so). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#else
#include <sched.h>
#endif

#include "rt_internal.h"

/* The most threads a pool can have (the caller included). */
#define MAX_THREADS 1024

/* How long a waiting thread spins before it sleeps. Back-to-back launches (the common case in
 * a kernel with several parallel loops) then never pay for a system call or a wake-up. */
#define SPIN_NS 100000

/* ---- Waiting on a 32-bit word ---------------------------------------------------------- */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Sleeps while *word == val (it may also return early, callers re-check). */
static void futex_wait(_Atomic uint32_t *word, uint32_t val) {
#if defined(__linux__)
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
#else
  /* Without futexes, nap briefly: correct, only slower to wake. */
  (void)word;
  (void)val;
  struct timespec nap = {0, 50000};
  nanosleep(&nap, NULL);
#endif
}

static void futex_wake_all(_Atomic uint32_t *word) {
#if defined(__linux__)
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
  (void)word;
#endif
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Returns once *word != val: spins for up to SPIN_NS when `spin` is set, then sleeps on the
 * futex. `sleepers` counts the threads asleep on the word, so that the thread that changes it
 * makes the wake-up system call only when someone sleeps. The counter and the futex's own
 * compare make a lost wake-up impossible: the waker changes the word and then reads the
 * counter, the sleeper raises the counter and then (in the kernel) re-reads the word, both
 * sequentially consistent, so at least one of them sees the other. */
static void wait_while_equal(_Atomic uint32_t *word, uint32_t val, _Atomic uint32_t *sleepers,
                             bool spin) {
  if (spin) {
    int64_t start = 0;
    for (uint32_t i = 1;; i++) {
      if (atomic_load_explicit(word, memory_order_acquire) != val) return;
      cpu_relax();
      if (i % 256 == 0) { /* read the clock only now and then, it costs more than a spin */
        if (start == 0) start = now_ns();
        else if (now_ns() - start > SPIN_NS) break;
      }
    }
  }
  atomic_fetch_add(sleepers, 1);
  while (atomic_load(word) == val) futex_wait(word, val);
  atomic_fetch_sub(sleepers, 1);
}

/* ---- The pool --------------------------------------------------------------------------- */

/* One process-wide pool. The caller of a launch is thread 0 and takes tasks too; workers are
 * threads 1..nworkers.
 *
 * A job is claimed through one 64-bit word, `claim` = (job number << 32) | next task index.
 * A thread claims task i by a compare-and-swap from (g, i) to (g, i + 1), so it never takes
 * a task of a job other than the one whose description (task, closure, n) it read. The
 * caller returns when `done` (tasks finished) reaches n; it does not wait for workers that
 * never woke up or arrived late: they find the job exhausted and go back to waiting. So a
 * launch on a busy machine, where workers are not running, costs what running the tasks on
 * the caller costs, not a scheduler delay.
 *
 * Reusing the job description safely: the caller first closes the claim word (index CLOSED,
 * which no compare-and-swap of an older job matches), then, after a release fence, writes
 * the new description and opens the job (index 0, release). A thread reads the description
 * after an acquire load of the claim word and issues an acquire fence before its
 * compare-and-swap; if it read anything of a newer description, the fences order the close
 * before its compare-and-swap, which then fails (the seqlock argument).
 *
 * `generation` is the 32-bit word workers spin and sleep on; the caller bumps it after
 * opening a job. The hot words sit on their own cache lines. */
#define CLOSED 0xffffffffu

typedef struct pool {
  _Alignas(64) _Atomic uint32_t generation; /* bumped once per job and to stop (futex word) */
  _Atomic uint32_t sleepers;                /* workers asleep on generation */
  _Atomic bool stop;                        /* workers exit when they see a new generation */

  _Alignas(64) _Atomic uint64_t claim; /* (job << 32) | next unclaimed task index */

  _Alignas(64) _Atomic uint32_t done; /* tasks of the current job finished (or skipped) */
  _Atomic uint32_t caller_sleeping;   /* 1 while the caller sleeps on done */

  /* The job's description, valid while the claim word holds its job number. */
  _Alignas(64) _Atomic(kiln_task_fn) task;
  _Atomic(void *) closure;
  _Atomic int32_t n;

  /* The failure with the lowest task index (protected by err_lock; a cold path). Tasks are
   * claimed in increasing order, so every task below a failing one has run: the result is
   * the same on every run, whichever thread ran what. */
  pthread_mutex_t err_lock;
  int32_t err_index;
  int32_t err_status;
  char err_msg[1024];

  /* Owned by whoever holds launch_lock. */
  bool running;       /* the workers exist */
  int requested;      /* the thread count the pool was built for */
  int nworkers;       /* workers actually started (requested - 1 unless creation failed) */
  bool spin;          /* false when there are more threads than CPUs: spinning would only
                         steal the CPU from the thread being waited for */
  uint32_t start_gen; /* the generation when the workers were started */
  pthread_t workers[MAX_THREADS - 1];
} pool;

static pool g_pool = {.err_lock = PTHREAD_MUTEX_INITIALIZER};

/* Serializes launches from different user threads (and pool re-creation): a second user
 * thread that launches while a launch runs waits for it, then gets the whole pool. */
static pthread_mutex_t launch_lock = PTHREAD_MUTEX_INITIALIZER;

/* The configured thread count (the caller included); 0 until first asked for. */
static _Atomic int32_t g_num_threads;

/* Non-zero while this thread runs a task (always on workers): launches then run serially. */
static _Thread_local int in_task;

static int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) return 1;
  return n > MAX_THREADS ? MAX_THREADS : (int)n;
}

/* The default thread count: KILN_NUM_THREADS when it holds a number in [1, MAX_THREADS],
 * else the number of online CPUs. */
static int default_num_threads(void) {
  const char *env = getenv("KILN_NUM_THREADS");
  if (env && *env) {
    char *end;
    errno = 0;
    long v = strtol(env, &end, 10);
    if (errno == 0 && *end == 0 && v >= 1 && v <= MAX_THREADS) return (int)v;
  }
  return online_cpus();
}

/* Records the failure of task i of n with status st if it is the lowest failing index so
 * far, together with the message the task left on this thread. */
static void record_error(pool *p, int32_t i, int32_t n, int32_t st) {
  pthread_mutex_lock(&p->err_lock);
  if (i < p->err_index) {
    p->err_index = i;
    p->err_status = st;
    const char *msg = kiln_last_error();
    if (*msg)
      snprintf(p->err_msg, sizeof p->err_msg, "%s", msg);
    else
      snprintf(p->err_msg, sizeof p->err_msg, "parallel task %d of %d failed: %s", (int)i,
               (int)n, kiln_status_str((kiln_status)st));
  }
  pthread_mutex_unlock(&p->err_lock);
}

/* After a failure in job g: claims every task still unclaimed so none of them runs, and
 * returns how many that was (they count as done). */
static uint32_t skip_rest(pool *p, uint32_t g, uint32_t n) {
  uint64_t c = atomic_load(&p->claim);
  while ((uint32_t)(c >> 32) == g && (uint32_t)c < n) {
    if (atomic_compare_exchange_weak(&p->claim, &c, ((uint64_t)g << 32) | n))
      return n - (uint32_t)c;
  }
  return 0;
}

/* Claims and runs tasks of the current job until none are left, then adds what this thread
 * finished to `done`. A thread that finished nothing touches nothing: the job may already be
 * over, and `done` may belong to the next one. */
static void run_tasks(pool *p) {
  uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
  const uint32_t g = (uint32_t)(c >> 32);
  uint32_t finished = 0, n = 0;
  for (;;) {
    kiln_task_fn task = atomic_load_explicit(&p->task, memory_order_relaxed);
    void *closure = atomic_load_explicit(&p->closure, memory_order_relaxed);
    n = (uint32_t)atomic_load_explicit(&p->n, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    uint32_t i = (uint32_t)c;
    if (i >= n) break; /* exhausted or closed (CLOSED is above any n) */
    if (atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acq_rel,
                                              memory_order_acquire)) {
      int32_t st = task((int32_t)i, (int32_t)n, closure);
      finished++;
      if (st) {
        record_error(p, (int32_t)i, (int32_t)n, st);
        finished += skip_rest(p, g, n);
      }
      c = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
    if ((uint32_t)(c >> 32) != g) break; /* a newer job: not the one described above */
  }
  if (finished) {
    /* Release: the caller, seeing done == n, sees everything the tasks wrote. */
    uint32_t total = atomic_fetch_add(&p->done, finished) + finished;
    if (total == n && atomic_load(&p->caller_sleeping)) futex_wake_all(&p->done);
  }
}

static void *worker_main(void *arg) {
  pool *p = arg;
  in_task = 1; /* a launch from a task on a worker runs serially */
  uint32_t seen = p->start_gen;
  for (;;) {
    wait_while_equal(&p->generation, seen, &p->sleepers, p->spin);
    seen = atomic_load(&p->generation);
    if (atomic_load(&p->stop)) return NULL;
    run_tasks(p);
    /* A failed task's message was copied; leave none behind for the next failure. */
    if (*kiln_last_error()) rt_set_last_error(KILN_OK, "");
  }
}

/* Stops and joins the workers. Called with launch_lock held and no job in flight, so every
 * worker is waiting for the next generation, or about to find the last job exhausted, and
 * exits promptly. */
static void stop_pool(pool *p) {
  atomic_store(&p->stop, true);
  atomic_fetch_add(&p->generation, 1);
  futex_wake_all(&p->generation);
  for (int w = 0; w < p->nworkers; w++) pthread_join(p->workers[w], NULL);
  p->running = false;
  p->nworkers = 0;
}

static void forget_pool_in_child(void);

/* Makes the pool have `nthreads` threads (the caller included), re-creating it when the
 * configured count changed since it was built. If the system refuses to create a thread, the
 * pool keeps the workers it got (possibly none: launches then run serially). */
static void ensure_pool(pool *p, int nthreads) {
  if (p->running && p->requested == nthreads) return;
  if (p->running) stop_pool(p);

  static bool atfork_registered;
  if (!atfork_registered) {
    atfork_registered = pthread_atfork(NULL, NULL, forget_pool_in_child) == 0;
  }

  atomic_store(&p->stop, false);
  p->start_gen = atomic_load(&p->generation);
  p->spin = nthreads <= online_cpus();
  p->requested = nthreads;
  p->nworkers = 0;
  /* Workers block every signal: signals for the process go to the user's threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int w = 0; w < nthreads - 1; w++) {
    if (pthread_create(&p->workers[w], NULL, worker_main, p) != 0) break;
    p->nworkers++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  p->running = true;
}

/* After fork() the child has only the forking thread: forget the parent's workers (and any
 * lock state copied mid-launch) so the child's first launch starts a fresh pool. */
static void forget_pool_in_child(void) {
  pthread_mutex_init(&launch_lock, NULL);
  pthread_mutex_init(&g_pool.err_lock, NULL);
  g_pool.running = false;
  g_pool.nworkers = 0;
  atomic_store(&g_pool.sleepers, 0);
  atomic_store(&g_pool.caller_sleeping, 0);
}

/* Joins the workers at process exit or when the library is unloaded (their code must not
 * run after it is unmapped). It never waits for a launch in flight: from inside a task, or
 * when another thread holds the launch lock, the workers are left to the exiting process. */
__attribute__((destructor)) static void shutdown_pool(void) {
  if (in_task) return;
  if (pthread_mutex_trylock(&launch_lock) != 0) return;
  if (g_pool.running) stop_pool(&g_pool);
  pthread_mutex_unlock(&launch_lock);
}

/* Runs the tasks one after another on the calling thread, stopping at the first failure. */
static int32_t run_serial(kiln_task_fn task, void *closure, int32_t n) {
  int saved = in_task;
  in_task = 1;
  int32_t st = 0;
  for (int32_t i = 0; i < n && st == 0; i++) st = task(i, n, closure);
  in_task = saved;
  return st;
}

KILN_API int32_t kiln_rt_parallel_launch(kiln_task_fn task, void *closure, int32_t n) {
  if (!task) return rt_set_last_error(KILN_ERR_MISUSE, "kiln_rt_parallel_launch: NULL task");
  int32_t nthreads = kiln_rt_num_threads();
  if (n <= 0) n = nthreads;
  if (in_task || nthreads == 1 || n == 1) return run_serial(task, closure, n);

  pool *p = &g_pool;
  pthread_mutex_lock(&launch_lock);
  ensure_pool(p, nthreads);
  if (p->nworkers == 0) {
    pthread_mutex_unlock(&launch_lock);
    return run_serial(task, closure, n);
  }

  /* Close the claim word, describe the job, open it, wake the workers. */
  uint32_t g = (uint32_t)(atomic_load(&p->claim) >> 32) + 1;
  atomic_store(&p->claim, ((uint64_t)g << 32) | CLOSED);
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&p->task, task, memory_order_relaxed);
  atomic_store_explicit(&p->closure, closure, memory_order_relaxed);
  atomic_store_explicit(&p->n, n, memory_order_relaxed);
  p->err_index = INT32_MAX;
  p->err_status = 0;
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  atomic_store_explicit(&p->claim, (uint64_t)g << 32, memory_order_release);
  atomic_fetch_add(&p->generation, 1);
  if (atomic_load(&p->sleepers)) futex_wake_all(&p->generation);

  in_task = 1;
  run_tasks(p);
  in_task = 0;

  /* Wait for the tasks other threads claimed. */
  uint32_t d;
  while ((d = atomic_load(&p->done)) != (uint32_t)n)
    wait_while_equal(&p->done, d, &p->caller_sleeping, p->spin);

  int32_t st = p->err_status;
  if (st) rt_set_last_error((kiln_status)st, p->err_msg);
  pthread_mutex_unlock(&launch_lock);
  return st;
}

KILN_API kiln_status kiln_rt_set_num_threads(int32_t n) {
  if (n > MAX_THREADS)
    return rt_errorf(KILN_ERR_MISUSE,
                     "kiln_rt_set_num_threads: %d threads is more than the limit of %d", (int)n,
                     MAX_THREADS);
  atomic_store(&g_num_threads, n <= 0 ? default_num_threads() : n);
  return KILN_OK;
}

KILN_API int32_t kiln_rt_num_threads(void) {
  int32_t n = atomic_load(&g_num_threads);
  if (n == 0) {
    int32_t expected = 0;
    n = default_num_threads();
    /* Another thread may have set it meanwhile; its value wins. */
    if (!atomic_compare_exchange_strong(&g_num_threads, &expected, n)) n = expected;
  }
  return n;
}

/* ---- Kernel helpers ---------------------------------------------------------------------- */

KILN_API void *kiln_rt_workspace_alloc(uint64_t bytes, uint64_t align) {
  if (align == 0 || (align & (align - 1)) != 0) {
    rt_errorf(KILN_ERR_MISUSE, "kiln_rt_workspace_alloc: alignment %llu is not a power of two",
              (unsigned long long)align);
    return NULL;
  }
  if (align < 64) align = 64; /* a cache line, and enough for any vector load */
  /* Refuse absurd sizes here rather than in the allocator (sanitizers abort on them). */
  if (bytes > (uint64_t)PTRDIFF_MAX / 2 || align > (uint64_t)PTRDIFF_MAX / 2) {
    rt_errorf(KILN_ERR_NOMEM, "kiln_rt_workspace_alloc: %llu bytes is too large",
              (unsigned long long)bytes);
    return NULL;
  }
  void *p = NULL;
  if (posix_memalign(&p, (size_t)align, bytes ? (size_t)bytes : 1) != 0) {
    rt_errorf(KILN_ERR_NOMEM, "kiln_rt_workspace_alloc: out of memory allocating %llu bytes",
              (unsigned long long)bytes);
    return NULL;
  }
  return p;
}

KILN_API void kiln_rt_workspace_free(void *p) { free(p); }

KILN_API void kiln_rt_error(const char *msg) { rt_set_last_error(KILN_ERR_RUNTIME, msg); }
