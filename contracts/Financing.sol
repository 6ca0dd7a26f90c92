// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Roles} from "./interfaces/IParticipantRegistry.sol";
import {ParticipantRegistry} from "./ParticipantRegistry.sol";
import {Operated} from "./base/Operated.sol";
import {ReceivableRegistry} from "./ReceivableRegistry.sol";
import {SettlementToken} from "./SettlementToken.sol";

/// @title Financing
/// @notice The market and the servicer for confirmed receivables. A holder asks for an
/// advance; financiers offer; accepting an offer, or a financier funding the request at its
/// asking advance, swaps the financier's settlement tokens for the receivable in one
/// transaction (delivery versus payment). The buyer repays the holder at maturity, in one or
/// several payments; late receivables are marked overdue and then defaulted, and with recourse
/// financing the original seller's liability for the shortfall is recorded. The buyer may
/// also offer to pay a receivable early, at a discount for the time saved, which its holder
/// can take; the payment and the receivable's closing then happen in one transaction.
/// @dev This contract is also the platform's {ParticipantRegistry}, and it is the settlement
/// agent of the token and the servicer of the registry (all three fixed in them when they were
/// deployed). It moves tokens only from the caller, from a financier at the terms of the
/// offer that financier posted, or from a buyer at the terms of its early-payment offer; and
/// receivables only from the seller who asked for financing or the holder a recourse seller
/// buys back from.
contract Financing is ParticipantRegistry, ReentrancyGuardTransient {
    enum RequestStatus {
        None,
        Open,
        Funded,
        Cancelled,
        Expired,
        Unwound // funded, then reversed when the recourse seller bought the receivable back
    }

    enum OfferStatus {
        None,
        Open,
        Withdrawn
    }

    /// @dev One slot. One request per receivable at a time; `round` counts them, and an offer
    /// is only good for the round it was made in, so a new request never revives old offers.
    /// A funded request stays here until the next request replaces it; then who is liable
    /// under its recourse is pushed onto `_earlierRecourseSellerIds`.
    struct Request {
        uint32 sellerId; // participant id of the holder who asked
        uint64 askingAdvance;
        uint64 outstanding; // what the receivable was owed when requested: caps offers
        uint40 deadline;
        RequestStatus status;
        bool recourse;
        uint16 round;
    }

    /// @dev One slot; the financier is the mapping key. Deleted when accepted (the settlement
    /// event is its record).
    struct Offer {
        uint64 advance;
        uint40 expiry;
        uint16 round;
        OfferStatus status;
    }

    /// @dev One slot, keyed by the receivable: only its buyer makes one, so a new offer replaces
    /// the last. Deleted when accepted or withdrawn (the events are its record); it follows the
    /// receivable to any later holder. Expiry zero: no offer.
    struct EarlyPaymentOffer {
        uint16 annualRateBps; // discount per year to the due date, in basis points of what is outstanding
        uint40 expiry;
    }

    /// @notice The receivables this contract finances and services.
    ReceivableRegistry public immutable registry;
    /// @notice The cash that pays advances and repayments.
    SettlementToken public immutable settlementToken;
    /// @notice The currency of the settlement token: only receivables in it can be financed or repaid here.
    bytes3 public immutable settlementCurrency;

    /// @notice After the due date, how long before the holder may mark a receivable overdue.
    uint40 public gracePeriod;
    /// @notice After the grace period, how long before an overdue receivable may be defaulted.
    uint40 public defaultPeriod;

    mapping(uint256 receivableId => Request) private _requests;
    mapping(uint256 receivableId => mapping(address financier => Offer)) private _offers;
    /// @notice What the recourse seller owes the holder of a defaulted receivable.
    mapping(uint256 receivableId => uint64) public recourseLiability;
    /// @dev The funded financings whose requests later requests replaced, oldest first: each
    /// one's recourse seller (0: bought without recourse). The last one governs while no later
    /// financing is funded; a recourse buy-back pops it. Written only on those rare paths.
    mapping(uint256 receivableId => uint32[]) private _earlierRecourseSellerIds;
    /// @dev The buyer's standing offer to pay each receivable early ({getEarlyPaymentOffer}).
    mapping(uint256 receivableId => EarlyPaymentOffer) private _earlyPaymentOffers;

    uint256 private constant _BPS = 10_000; // 100 %
    uint256 private constant _YEAR = 365 days; // the discount's day count: actual/365

    event ServicingPeriodsChanged(uint40 gracePeriod, uint40 defaultPeriod);
    event FinancingRequested(
        uint256 indexed id, address indexed seller, uint16 round, uint64 askingAdvance, uint40 deadline, bool recourse
    );
    event FinancingRequestCancelled(uint256 indexed id, uint16 round);
    event FinancingRequestExpired(uint256 indexed id, uint16 round);
    event OfferMade(uint256 indexed id, address indexed financier, uint16 round, uint64 advance, uint40 expiry);
    event OfferWithdrawn(uint256 indexed id, address indexed financier, uint16 round);
    /// @notice The delivery-versus-payment swap happened. Every other offer of the round lapsed.
    event FinancingSettled(
        uint256 indexed id, address indexed seller, address indexed financier, uint16 round, uint64 advance, bool viaOffer
    );
    event ReceivableOverdue(uint256 indexed id, address indexed holder, uint64 outstanding);
    event ReceivableDefaulted(uint256 indexed id, address indexed holder, uint64 outstanding);
    event RecourseLiabilityRecorded(uint256 indexed id, address indexed seller, address indexed creditor, uint64 amount);
    event RecourseLiabilityReduced(uint256 indexed id, uint64 liability);
    event RecourseSettled(uint256 indexed id, address indexed seller, address indexed creditor, uint64 amount);
    event EarlyPaymentOffered(uint256 indexed id, address indexed buyer, uint16 annualRateBps, uint40 expiry);
    event EarlyPaymentWithdrawn(uint256 indexed id, address indexed buyer);
    /// @notice The buyer paid the holder `paid` for the receivable, which is repaid in full (the
    /// registry's RepaymentRecorded shows the whole outstanding amount); the holder gave up `discount`.
    event EarlyPaymentSettled(
        uint256 indexed id, address indexed buyer, address indexed holder, uint64 paid, uint64 discount
    );

    error ZeroAmount();
    error CurrencyNotSettleable(bytes3 currency);
    error NotHolder(uint256 id, address account);
    error NotSeller(uint256 id, address account);
    error RequestAlreadyOpen(uint256 id);
    error TooManyRequests(uint256 id);
    error RequestNotOpen(uint256 id, RequestStatus status);
    error RequestDeadlinePassed(uint256 id, uint40 deadline);
    error RequestNotExpired(uint256 id, uint40 deadline);
    error InvalidDeadline(uint40 deadline, uint40 dueDate);
    error AdvanceExceedsOutstanding(uint64 advance, uint64 outstanding);
    error AdvanceBelowAsking(uint64 advance, uint64 askingAdvance);
    error InvalidExpiry(uint40 expiry, uint40 deadline);
    error SelfFinancing(address account);
    error NoOpenOffer(uint256 id, address financier);
    error OfferExpired(uint256 id, address financier, uint40 expiry);
    error StaleRequest(uint256 id);
    error NotConfirmed(uint256 id);
    error Delinquent(uint256 id, ReceivableRegistry.Delinquency delinquency);
    error NotYetOverdue(uint256 id, uint256 overdueAt);
    error NotYetDefaultable(uint256 id, uint256 defaultableAt);
    error NoRecourseLiability(uint256 id);
    error OfferChanged(uint256 id, address financier, uint64 advance);
    error LiabilityExceedsOutstanding(uint256 id, uint64 liability, uint64 outstanding);
    error NotBuyer(uint256 id, address account);
    error InvalidDiscountRate(uint16 annualRateBps);
    error NoEarlyPaymentOffer(uint256 id);
    error EarlyPaymentExpired(uint256 id, uint40 expiry);
    error DiscountAboveAccepted(uint256 id, uint64 discount, uint64 maxDiscount);

    constructor(
        ReceivableRegistry registry_,
        SettlementToken settlementToken_,
        uint40 gracePeriod_,
        uint40 defaultPeriod_,
        Administration memory administration
    ) Operated(administration) {
        if (address(registry_) == address(0) || address(settlementToken_) == address(0)) revert ZeroAddress();
        registry = registry_;
        settlementToken = settlementToken_;
        settlementCurrency = settlementToken_.currency();
        _setServicingPeriods(gracePeriod_, defaultPeriod_);
    }

    /// @notice Sets the grace and default periods (seconds) of the servicing rules.
    function setServicingPeriods(uint40 gracePeriod_, uint40 defaultPeriod_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setServicingPeriods(gracePeriod_, defaultPeriod_);
    }

    // ---------------------------------------------------------------- requests

    /// @notice The holder of a confirmed receivable asks for an advance of at least
    /// `askingAdvance`, open to offers until `deadline` (before the due date).
    /// @param recourse With recourse, the seller stays liable for what the buyer fails to pay.
    function requestFinancing(uint256 id, uint64 askingAdvance, uint40 deadline, bool recourse) external {
        uint32 sellerId = _requireParticipant(msg.sender, Roles.HOLDER);
        (ReceivableRegistry.Receivable memory receivable, address holder) = registry.receivableWithHolder(id);
        if (holder != msg.sender) revert NotHolder(id, msg.sender);
        if (receivable.status != ReceivableRegistry.Status.Confirmed) revert NotConfirmed(id);
        if (receivable.currency != settlementCurrency) revert CurrencyNotSettleable(receivable.currency);
        uint64 outstanding = receivable.amount - receivable.repaid;
        if (askingAdvance == 0) revert ZeroAmount();
        if (askingAdvance > outstanding) revert AdvanceExceedsOutstanding(askingAdvance, outstanding);
        // A deadline before the due date also means a live request never meets a delinquent receivable.
        if (deadline <= block.timestamp || deadline >= receivable.dueDate) {
            revert InvalidDeadline(deadline, receivable.dueDate);
        }

        Request memory previous = _requests[id];
        if (previous.status == RequestStatus.Open) {
            if (previous.sellerId != sellerId) {
                // Its seller passed the receivable on: that request can never settle.
                emit FinancingRequestCancelled(id, previous.round);
            } else if (block.timestamp <= previous.deadline) {
                revert RequestAlreadyOpen(id);
            } else {
                emit FinancingRequestExpired(id, previous.round);
            }
        } else if (previous.status == RequestStatus.Funded) {
            // The financing being replaced is, until another one is funded, the one whose
            // recourse terms apply (an unsold resale must not release the original seller).
            _earlierRecourseSellerIds[id].push(previous.recourse ? previous.sellerId : 0);
        }
        if (previous.round == type(uint16).max) revert TooManyRequests(id);
        uint16 round = previous.round + 1;
        _requests[id] = Request({
            sellerId: sellerId,
            askingAdvance: askingAdvance,
            outstanding: outstanding,
            deadline: deadline,
            status: RequestStatus.Open,
            recourse: recourse,
            round: round
        });
        emit FinancingRequested(id, msg.sender, round, askingAdvance, deadline, recourse);
    }

    /// @notice The seller withdraws its open request; all offers on it lapse.
    function cancelRequest(uint256 id) external {
        uint32 sellerId = _requireParticipant(msg.sender, Roles.HOLDER);
        Request storage request = _requests[id];
        if (request.status != RequestStatus.Open) revert RequestNotOpen(id, request.status);
        if (request.sellerId != sellerId) revert NotSeller(id, msg.sender);
        request.status = RequestStatus.Cancelled;
        emit FinancingRequestCancelled(id, request.round);
    }

    /// @notice Anyone may close a request whose deadline has passed.
    function expireRequest(uint256 id) external {
        _requireNotPaused();
        Request storage request = _requests[id];
        if (request.status != RequestStatus.Open) revert RequestNotOpen(id, request.status);
        if (block.timestamp <= request.deadline) revert RequestNotExpired(id, request.deadline);
        request.status = RequestStatus.Expired;
        emit FinancingRequestExpired(id, request.round);
    }

    // ---------------------------------------------------------------- offers

    /// @notice A financier offers `advance` for the receivable, valid until `expiry`; a standing
    /// commitment to pay it if the seller accepts in time. A second call in the same round
    /// revises the caller's offer.
    function makeOffer(uint256 id, uint64 advance, uint40 expiry) external {
        uint32 financierId = _requireParticipant(msg.sender, Roles.FINANCIER);
        Request memory request = _liveRequest(id);
        if (request.sellerId == financierId) revert SelfFinancing(msg.sender);
        if (advance < request.askingAdvance) revert AdvanceBelowAsking(advance, request.askingAdvance);
        if (advance > request.outstanding) revert AdvanceExceedsOutstanding(advance, request.outstanding);
        if (expiry <= block.timestamp || expiry > request.deadline) revert InvalidExpiry(expiry, request.deadline);
        _offers[id][msg.sender] = Offer({advance: advance, expiry: expiry, round: request.round, status: OfferStatus.Open});
        emit OfferMade(id, msg.sender, request.round, advance, expiry);
    }

    /// @notice The financier withdraws its open offer.
    function withdrawOffer(uint256 id) external {
        _requireParticipant(msg.sender, Roles.FINANCIER);
        Offer storage offer = _openOffer(id, msg.sender);
        offer.status = OfferStatus.Withdrawn;
        emit OfferWithdrawn(id, msg.sender, offer.round);
    }

    /// @notice The seller accepts `financier`'s offer of `advance`: the advance and the
    /// receivable change hands in this transaction, and every other offer lapses.
    /// @param advance The advance the seller saw; a revision of the offer since then reverts.
    function acceptOffer(uint256 id, address financier, uint64 advance) external nonReentrant {
        Request memory request = _liveRequest(id);
        (uint32 sellerId,) = _requireParticipants(msg.sender, Roles.HOLDER, financier, Roles.FINANCIER);
        if (sellerId != request.sellerId) revert NotSeller(id, msg.sender);
        Offer memory offer = _openOffer(id, financier);
        if (offer.advance != advance) revert OfferChanged(id, financier, offer.advance);
        if (offer.expiry < block.timestamp) revert OfferExpired(id, financier, offer.expiry);
        delete _offers[id][financier];
        _settle(id, request, msg.sender, financier, offer.advance, true);
    }

    /// @notice A financier funds an open request outright at its asking advance.
    function fundRequest(uint256 id) external nonReentrant {
        Request memory request = _liveRequest(id);
        address seller = accountOf(request.sellerId);
        if (seller == msg.sender) revert SelfFinancing(msg.sender);
        _requireParticipants(seller, Roles.HOLDER, msg.sender, Roles.FINANCIER);
        _settle(id, request, seller, msg.sender, request.askingAdvance, false);
    }

    /// @dev Delivery versus payment: both legs or neither. The caller has checked that seller
    /// and financier are active. The registry refuses to move the receivable unless `seller`
    /// still holds it confirmed; then the buyer must still owe what it owed when the request
    /// was made (offers were priced on that). Effects first; token and registry call nothing back.
    function _settle(uint256 id, Request memory request, address seller, address financier, uint64 advance, bool viaOffer)
        private
    {
        _requests[id].status = RequestStatus.Funded;
        emit FinancingSettled(id, seller, financier, request.round, advance, viaOffer);

        settlementToken.settlementTransfer(financier, seller, advance);
        if (registry.transferBySettlement(seller, financier, id) != request.outstanding) revert StaleRequest(id);
    }

    // ---------------------------------------------------------------- servicing

    /// @notice The buyer pays `amount` of a confirmed receivable to its current holder.
    function repay(uint256 id, uint64 amount) external nonReentrant {
        uint32 buyerId = _requireParticipant(msg.sender, Roles.BUYER);
        (address holder, uint64 outstanding, ReceivableRegistry.Delinquency delinquency) =
            registry.recordRepayment(id, buyerId, amount, settlementCurrency);
        _requireParticipant(holder, Roles.ANY);
        if (delinquency == ReceivableRegistry.Delinquency.Defaulted && recourseLiability[id] > outstanding) {
            recourseLiability[id] = outstanding;
            emit RecourseLiabilityReduced(id, outstanding);
        }
        settlementToken.settlementTransfer(msg.sender, holder, amount);
    }

    /// @notice The holder marks a receivable overdue once its due date plus the grace period
    /// has passed unpaid.
    function markOverdue(uint256 id) external {
        ReceivableRegistry.Receivable memory receivable = _servicedByHolder(id);
        if (receivable.delinquency != ReceivableRegistry.Delinquency.None) revert Delinquent(id, receivable.delinquency);
        uint256 overdueAt = uint256(receivable.dueDate) + gracePeriod;
        if (block.timestamp <= overdueAt) revert NotYetOverdue(id, overdueAt);
        registry.setDelinquency(id, ReceivableRegistry.Delinquency.Overdue);
        emit ReceivableOverdue(id, msg.sender, receivable.amount - receivable.repaid);
    }

    /// @notice The holder marks an overdue receivable defaulted once the default period has
    /// also passed. If the holder bought it with recourse, the seller becomes liable for the
    /// shortfall.
    function markDefaulted(uint256 id) external {
        ReceivableRegistry.Receivable memory receivable = _servicedByHolder(id);
        if (receivable.delinquency != ReceivableRegistry.Delinquency.Overdue) revert Delinquent(id, receivable.delinquency);
        uint256 defaultableAt = uint256(receivable.dueDate) + gracePeriod + defaultPeriod;
        if (block.timestamp <= defaultableAt) revert NotYetDefaultable(id, defaultableAt);
        uint64 outstanding = receivable.amount - receivable.repaid;
        registry.setDelinquency(id, ReceivableRegistry.Delinquency.Defaulted);
        emit ReceivableDefaulted(id, msg.sender, outstanding);
        address seller = _recourseSeller(id);
        if (seller != address(0) && seller != msg.sender) {
            recourseLiability[id] = outstanding;
            emit RecourseLiabilityRecorded(id, seller, msg.sender, outstanding);
        }
    }

    /// @notice The liable seller buys a defaulted receivable back: it pays its recorded
    /// liability to the holder and takes the receivable, in one transaction. The financing is
    /// unwound; if the seller had itself bought the receivable with recourse, its own seller
    /// becomes liable to it in turn.
    function settleRecourse(uint256 id) external nonReentrant {
        uint64 liability = recourseLiability[id];
        if (liability == 0 || _recourseSeller(id) != msg.sender) revert NoRecourseLiability(id);
        (ReceivableRegistry.Receivable memory receivable, address holder) = registry.receivableWithHolder(id);
        _requireParticipants(msg.sender, Roles.HOLDER, holder, Roles.HOLDER);
        uint64 outstanding = receivable.amount - receivable.repaid;
        // Repayments only ever lower the liability to what is outstanding; this keeps it so.
        if (outstanding < liability) revert LiabilityExceedsOutstanding(id, liability, outstanding);

        Request storage request = _requests[id];
        if (request.status == RequestStatus.Funded) {
            request.status = RequestStatus.Unwound; // the financing before it governs again
        } else {
            _earlierRecourseSellerIds[id].pop(); // the one the seller bought with; the one before governs
        }
        address earlierSeller = _recourseSeller(id);
        bool passedOn = earlierSeller != address(0) && earlierSeller != msg.sender;
        recourseLiability[id] = passedOn ? outstanding : 0;
        emit RecourseSettled(id, msg.sender, holder, liability);
        if (passedOn) emit RecourseLiabilityRecorded(id, earlierSeller, msg.sender, outstanding);

        settlementToken.settlementTransfer(msg.sender, holder, liability);
        // The transfer itself pays nothing off: what is owed must be what was read above.
        assert(registry.transferBySettlement(holder, msg.sender, id) == outstanding);
    }

    // ---------------------------------------------------------------- early payment

    /// @notice The buyer offers to pay a confirmed receivable before its due date, less a
    /// discount at `annualRateBps` a year for the time left to the due date, if its holder
    /// accepts by `expiry` (after now, no later than the due date). Replaces the buyer's
    /// earlier offer on the receivable.
    /// @param annualRateBps 1 to 10,000 (100 % a year), and low enough that the discount is
    /// less than what is outstanding (which limits it only when the due date is over a year away).
    function offerEarlyPayment(uint256 id, uint16 annualRateBps, uint40 expiry) external {
        ReceivableRegistry.Receivable memory receivable = _owedByCaller(id);
        if (receivable.status != ReceivableRegistry.Status.Confirmed) revert NotConfirmed(id);
        if (receivable.delinquency != ReceivableRegistry.Delinquency.None) revert Delinquent(id, receivable.delinquency);
        if (receivable.currency != settlementCurrency) revert CurrencyNotSettleable(receivable.currency);
        if (expiry <= block.timestamp || expiry > receivable.dueDate) revert InvalidExpiry(expiry, receivable.dueDate);
        // The discount only shrinks from here on, so below the whole amount now means paid > 0 at acceptance.
        if (
            annualRateBps == 0 || annualRateBps > _BPS
                || annualRateBps * (receivable.dueDate - block.timestamp) >= _BPS * _YEAR
        ) revert InvalidDiscountRate(annualRateBps);
        _earlyPaymentOffers[id] = EarlyPaymentOffer({annualRateBps: annualRateBps, expiry: expiry});
        emit EarlyPaymentOffered(id, msg.sender, annualRateBps, expiry);
    }

    /// @notice The buyer withdraws its early-payment offer on a receivable (also one left on a
    /// receivable that has since been repaid or split, where it can no longer be accepted).
    function withdrawEarlyPayment(uint256 id) external {
        _owedByCaller(id);
        if (_earlyPaymentOffers[id].expiry == 0) revert NoEarlyPaymentOffer(id);
        delete _earlyPaymentOffers[id];
        emit EarlyPaymentWithdrawn(id, msg.sender);
    }

    /// @notice The holder takes the buyer's early-payment offer: the buyer pays it what is
    /// outstanding less the discount for the time left to the due date, rounded down (so the
    /// payment rounds up), and the receivable is repaid in full, in one transaction.
    /// @param maxDiscount The discount the holder was quoted. It only shrinks as time passes,
    /// so a larger one means the offer was revised since: that reverts.
    function acceptEarlyPayment(uint256 id, uint64 maxDiscount) external nonReentrant {
        ReceivableRegistry.Receivable memory receivable = _servicedByHolder(id);
        address buyer = accountOf(receivable.buyerId);
        uint32 buyerId = _requireParticipant(buyer, Roles.BUYER);
        if (receivable.delinquency != ReceivableRegistry.Delinquency.None) revert Delinquent(id, receivable.delinquency);
        EarlyPaymentOffer memory offer = _earlyPaymentOffers[id];
        if (offer.expiry == 0) revert NoEarlyPaymentOffer(id);
        if (offer.expiry < block.timestamp) revert EarlyPaymentExpired(id, offer.expiry);
        uint64 outstanding = receivable.amount - receivable.repaid;
        // Below `outstanding`: the offer's rate was checked against a longer time to the due date.
        uint64 discount = uint64(
            uint256(outstanding) * offer.annualRateBps * (receivable.dueDate - block.timestamp) / (_BPS * _YEAR)
        );
        if (discount > maxDiscount) revert DiscountAboveAccepted(id, discount, maxDiscount);
        uint64 paid = outstanding - discount;

        delete _earlyPaymentOffers[id];
        emit EarlyPaymentSettled(id, buyer, msg.sender, paid, discount);

        // The holder agreed to take `paid` for the whole debt: the receivable closes as repaid.
        // What the registry returns (this holder, nothing left, no delinquency) was read above.
        // slither-disable-next-line unused-return
        registry.recordRepayment(id, buyerId, outstanding, settlementCurrency);
        settlementToken.settlementTransfer(buyer, msg.sender, paid);
    }

    // ---------------------------------------------------------------- views

    /// @notice The buyer's standing offer to pay a receivable early at a discount (expiry 0:
    /// none). It reads as made even once past its expiry or left on a receivable since repaid or
    /// split, where it can no longer be accepted.
    function getEarlyPaymentOffer(uint256 id) external view returns (EarlyPaymentOffer memory) {
        return _earlyPaymentOffers[id];
    }

    /// @notice The current (or last) financing request of a receivable, with its seller.
    function getRequest(uint256 id) external view returns (Request memory request, address seller) {
        request = _requests[id];
        seller = accountOf(request.sellerId);
    }

    /// @notice `financier`'s offer on a receivable. An open offer of a past round, on a request
    /// no longer open, or past its expiry reads as lapsed (`lapsed` true). An accepted offer
    /// reads as None: the FinancingSettled event records it.
    function getOffer(uint256 id, address financier) external view returns (Offer memory offer, bool lapsed) {
        offer = _offers[id][financier];
        Request storage request = _requests[id];
        lapsed = offer.status == OfferStatus.Open
            && (offer.round != request.round || request.status != RequestStatus.Open || offer.expiry < block.timestamp);
    }

    // ---------------------------------------------------------------- internals

    function _setServicingPeriods(uint40 gracePeriod_, uint40 defaultPeriod_) private {
        gracePeriod = gracePeriod_;
        defaultPeriod = defaultPeriod_;
        emit ServicingPeriodsChanged(gracePeriod_, defaultPeriod_);
    }

    /// @dev The seller liable under the governing financing (the last funded one not unwound),
    /// when that financing was with recourse.
    function _recourseSeller(uint256 id) private view returns (address) {
        Request storage request = _requests[id];
        uint32 sellerId;
        if (request.status == RequestStatus.Funded) {
            sellerId = request.recourse ? request.sellerId : 0;
        } else {
            uint32[] storage earlier = _earlierRecourseSellerIds[id];
            sellerId = earlier.length == 0 ? 0 : earlier[earlier.length - 1];
        }
        return sellerId == 0 ? address(0) : accountOf(sellerId);
    }

    function _liveRequest(uint256 id) private view returns (Request memory request) {
        request = _requests[id];
        if (request.status != RequestStatus.Open) revert RequestNotOpen(id, request.status);
        if (block.timestamp > request.deadline) revert RequestDeadlinePassed(id, request.deadline);
    }

    function _openOffer(uint256 id, address financier) private view returns (Offer storage offer) {
        offer = _offers[id][financier];
        if (offer.status != OfferStatus.Open || offer.round != _requests[id].round) revert NoOpenOffer(id, financier);
    }

    /// @dev The receivable, when the caller is its buyer and an active participant.
    function _owedByCaller(uint256 id) private view returns (ReceivableRegistry.Receivable memory receivable) {
        uint32 buyerId = _requireParticipant(msg.sender, Roles.BUYER);
        // Not its holder: the buyer's offer stands whoever holds the receivable.
        // slither-disable-next-line unused-return
        (receivable,) = registry.receivableWithHolder(id);
        if (receivable.buyerId != buyerId) revert NotBuyer(id, msg.sender);
    }

    function _servicedByHolder(uint256 id) private view returns (ReceivableRegistry.Receivable memory receivable) {
        _requireParticipant(msg.sender, Roles.HOLDER);
        address holder;
        (receivable, holder) = registry.receivableWithHolder(id);
        if (holder != msg.sender) revert NotHolder(id, msg.sender);
        if (receivable.status != ReceivableRegistry.Status.Confirmed) revert NotConfirmed(id);
    }
}
