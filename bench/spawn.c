/*
 * spawn.c: time whole-process runs of several commands side by side.
 * usage: spawn ROUNDS LABEL CMD [ARGS...] -- LABEL CMD [ARGS...] -- ...
 * Each round runs every command once, in turn, so that machine noise hits
 * all of them alike. Prints the median and mean wall time of each, and its
 * ratio to the first command's median.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXCMD 16

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: spawn ROUNDS LABEL CMD... [-- LABEL CMD...]...\n");
        return 2;
    }
    int rounds = atoi(argv[1]), n = 0;
    char *label[MAXCMD];
    char **cmd[MAXCMD];
    for (int i = 2; i < argc && n < MAXCMD;) {
        label[n] = argv[i++];
        cmd[n] = &argv[i];
        while (i < argc && strcmp(argv[i], "--") != 0)
            i++;
        if (i < argc)
            argv[i++] = NULL;
        n++;
    }
    double *t = calloc((size_t)(n * rounds), sizeof *t);
    int failures[MAXCMD] = {0};
    for (int r = 0; r < rounds; r++) {
        for (int c = 0; c < n; c++) {
            double t0 = now_us();
            pid_t pid = fork();
            if (pid == 0) {
                int fd = open("/dev/null", O_RDWR);
                dup2(fd, 0);
                dup2(fd, 1);
                dup2(fd, 2);
                execvp(cmd[c][0], cmd[c]);
                _exit(127);
            }
            int st;
            waitpid(pid, &st, 0);
            t[c * rounds + r] = now_us() - t0;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                failures[c]++;
        }
    }
    double base = 0;
    for (int c = 0; c < n; c++) {
        double *v = &t[c * rounds], sum = 0;
        for (int r = 0; r < rounds; r++)
            sum += v[r];
        qsort(v, (size_t)rounds, sizeof *v, cmp);
        double med = v[rounds / 2];
        if (c == 0)
            base = med;
        printf("%-28s median %8.3f ms  mean %8.3f ms  ratio %5.2f%s\n", label[c], med / 1000,
               sum / rounds / 1000, med / base, failures[c] ? "  (FAILED RUNS)" : "");
    }
    free(t);
    for (int c = 0; c < n; c++)
        if (failures[c])
            return 1;
    return 0;
}
