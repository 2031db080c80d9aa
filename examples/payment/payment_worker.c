/*
 * payment_worker.c: keel-payment-worker, the activity worker of the payment
 * example. It runs the payment activities (payment.h) for tasks on the
 * "payments" queue (keel.tasks.payments) through keel's worker
 * (keel/worker.h), recording their side effects in an effect log when
 * --effects is given. SIGINT or SIGTERM stops it the way a deploy would:
 * no new task, running ones get worker.grace.ms, offsets are committed,
 * then it exits 0 (worker_main.h).
 */
#include "payment.h"
#include "worker_main.h"

int main(int argc, char **argv)
{
        const example_worker_t ex = {
            .prog = "keel-payment-worker",
            .task_queue = PAYMENT_QUEUE,
            .about = "Run the payment example's activities (chargeCard, "
                     "reserveInventory,\nsendReceipt, refundCard, "
                     "releaseInventory, markFulfilled) for tasks on\n"
                     "keel.tasks." PAYMENT_QUEUE " ",
            .activities = payment_activities,
            .activities_cnt = payment_activities_cnt};
        return example_worker_main(&ex, argc, argv);
}
